// SPDX-License-Identifier: MIT
#include "oci/containerfile.hpp"

#include <map>

#include <gtest/gtest.h>

using namespace ctr::oci;

namespace {

VarLookup vars(std::map<std::string, std::string> m) {
    return [m](const std::string& k) -> std::optional<std::string> {
        auto it = m.find(k);
        if (it == m.end()) return std::nullopt;
        return it->second;
    };
}

std::vector<std::string> words(const std::string& s, std::map<std::string, std::string> m = {}) {
    auto r = process_words(s, '\\', vars(m));
    EXPECT_TRUE(r) << (r ? "" : r.error().message);
    return r ? *r : std::vector<std::string>{};
}

} // namespace

TEST(Containerfile, StagesArgsAndInstructions) {
    auto cf = parse_containerfile("ARG BASE=debian\n"
                                  "FROM ${BASE}:bookworm AS Build\n"
                                  "run echo hi\n"
                                  "COPY --from=build --chown=1:2 --chmod=0755 a b /dst/\n"
                                  "FROM scratch\n"
                                  "CMD [\"/bin/sh\", \"-c\", \"x\"]\n");
    ASSERT_TRUE(cf) << cf.error().message;
    ASSERT_EQ(cf->global_args.size(), 1u);
    ASSERT_EQ(cf->stages.size(), 2u);
    EXPECT_EQ(cf->stages[0].base, "${BASE}:bookworm");
    EXPECT_EQ(cf->stages[0].name, "build");
    EXPECT_EQ(cf->stages[0].line, 2);
    ASSERT_EQ(cf->stages[0].steps.size(), 2u);
    EXPECT_EQ(cf->stages[0].steps[0].keyword, "RUN");
    EXPECT_EQ(cf->stages[0].steps[0].args, "echo hi");
    EXPECT_EQ(cf->stages[0].steps[0].line, 3);
    const Instruction& copy = cf->stages[0].steps[1];
    EXPECT_EQ(copy.flag("from"), "build");
    EXPECT_EQ(copy.flag("chown"), "1:2");
    EXPECT_EQ(copy.flag("chmod"), "0755");
    EXPECT_EQ(copy.args, "a b /dst/");
    EXPECT_EQ(cf->stages[1].base, "scratch");
    const Instruction& cmd = cf->stages[1].steps[0];
    EXPECT_TRUE(cmd.exec_form);
    EXPECT_EQ(cmd.json, (std::vector<std::string>{"/bin/sh", "-c", "x"}));
}

TEST(Containerfile, ContinuationsCommentsAndEscapeDirective) {
    auto cf = parse_containerfile("FROM x\n"
                                  "RUN a \\\n"
                                  "# a comment inside\n"
                                  "\n"
                                  "    b \\\n"
                                  "    c\n"
                                  "# trailing comment\n");
    ASSERT_TRUE(cf) << cf.error().message;
    ASSERT_EQ(cf->stages[0].steps.size(), 1u);
    EXPECT_EQ(cf->stages[0].steps[0].args, "a     b     c");

    auto bt = parse_containerfile("# escape=`\n\nFROM x\nRUN dir `\n  c:\\\\\nWORKDIR c:\\x\n");
    ASSERT_TRUE(bt) << bt.error().message;
    EXPECT_EQ(bt->escape, '`');
    EXPECT_EQ(bt->stages[0].steps[0].args, "dir   c:\\\\");
    // After the first instruction or blank line a directive is only a comment.
    auto late = parse_containerfile("\n# escape=`\nFROM x\nRUN a \\\n b\n");
    ASSERT_TRUE(late);
    EXPECT_EQ(late->escape, '\\');
    EXPECT_EQ(late->stages[0].steps[0].args, "a  b");
}

TEST(Containerfile, Heredocs) {
    auto cf = parse_containerfile("FROM x\n"
                                  "RUN <<EOF\n"
                                  "echo one\n"
                                  "echo two\n"
                                  "EOF\n"
                                  "RUN cat <<-'A' > /f && cat <<B >> /f\n"
                                  "\tliteral $X\n"
                                  "\tA\n"
                                  "expanded $X\n"
                                  "B\n"
                                  "RUN echo '<<NOT'\n");
    ASSERT_TRUE(cf) << cf.error().message;
    const auto& s = cf->stages[0].steps;
    ASSERT_EQ(s.size(), 3u);
    ASSERT_EQ(s[0].heredocs.size(), 1u);
    EXPECT_EQ(s[0].heredocs[0].name, "EOF");
    EXPECT_EQ(s[0].heredocs[0].body, "echo one\necho two\n");
    ASSERT_EQ(s[1].heredocs.size(), 2u);
    EXPECT_FALSE(s[1].heredocs[0].expand);
    EXPECT_TRUE(s[1].heredocs[0].strip_tabs);
    EXPECT_EQ(s[1].heredocs[0].body, "\tliteral $X\n");
    EXPECT_EQ(s[1].heredocs[1].body, "expanded $X\n");
    EXPECT_TRUE(s[2].heredocs.empty());
    auto open = parse_containerfile("FROM x\nRUN <<EOF\necho\n");
    ASSERT_FALSE(open);
    EXPECT_EQ(open.error().message, "line 2: heredoc <<EOF has no terminating line \"EOF\"");
}

TEST(Containerfile, ErrorsNameTheLine) {
    auto unknown = parse_containerfile("FROM x\n\nFROBNICATE a\n");
    ASSERT_FALSE(unknown);
    EXPECT_EQ(unknown.error().message, "line 3: unknown instruction FROBNICATE");
    auto mount = parse_containerfile("FROM x\nRUN --mount=type=cache,target=/x true\n");
    ASSERT_FALSE(mount);
    EXPECT_EQ(mount.error().message, "line 2: RUN --mount is not supported");
    auto flag = parse_containerfile("FROM x\nCOPY --frm=a b c\n");
    ASSERT_FALSE(flag);
    EXPECT_EQ(flag.error().message, "line 2: unknown flag --frm for COPY");
    auto before = parse_containerfile("RUN x\nFROM y\n");
    ASSERT_FALSE(before);
    EXPECT_EQ(before.error().message, "line 1: RUN before the first FROM (only ARG may come first)");
    EXPECT_FALSE(parse_containerfile("# just a comment\n"));
    EXPECT_FALSE(parse_containerfile("FROM x\nSHELL /bin/bash -c\n"));
    EXPECT_FALSE(parse_containerfile("FROM x\nRUN\n"));
    EXPECT_FALSE(parse_containerfile("FROM x AS a\nFROM y AS A\n"));
    EXPECT_FALSE(parse_containerfile("FROM x\nONBUILD FROM y\n"));
    EXPECT_TRUE(parse_containerfile("FROM x\nONBUILD RUN y\n"));
    EXPECT_FALSE(parse_containerfile("# escape=x\nFROM x\n"));
    auto utf8 = parse_containerfile("FROM x\nLABEL a=\xf8\n");
    ASSERT_FALSE(utf8);
    EXPECT_EQ(utf8.error().message, "line 2: not valid UTF-8");
    EXPECT_TRUE(parse_containerfile("FROM x\nLABEL a=\xc3\xa9t\xc3\xa9 b=\xf0\x9f\x90\xb3\n"));
    EXPECT_FALSE(parse_containerfile("FROM x\nLABEL a=\xc0\xaf\n")); // overlong
    EXPECT_FALSE(parse_containerfile("FROM x\nLABEL a=\xed\xa0\x80\n")); // surrogate
}

TEST(Containerfile, JsonFormFallsBackToShellForm) {
    auto cf = parse_containerfile("FROM x\nRUN [\"a\", 1]\nCMD [not json\n");
    ASSERT_TRUE(cf);
    EXPECT_FALSE(cf->stages[0].steps[0].exec_form);
    EXPECT_FALSE(cf->stages[0].steps[1].exec_form);
}

TEST(Words, QuotesEscapesAndExpansion) {
    EXPECT_EQ(words("a  'b c' \"d $X\" e\\ f", {{"X", "x"}}),
              (std::vector<std::string>{"a", "b c", "d x", "e f"}));
    EXPECT_EQ(words("'$X' \"\\$X\" \\$X", {{"X", "x"}}), (std::vector<std::string>{"$X", "$X", "$X"}));
    EXPECT_EQ(words("${X:-def} ${Y:-def} ${E:-def} ${E-def}", {{"X", "x"}, {"E", ""}}),
              (std::vector<std::string>{"x", "def", "def"}));
    EXPECT_EQ(words("${X:+alt} ${Y:+alt} ${E:+alt}z ${E+alt}", {{"X", "x"}, {"E", ""}}),
              (std::vector<std::string>{"alt", "z", "alt"}));
    EXPECT_EQ(words("${A:-${B:-deep}}/x $", {}), (std::vector<std::string>{"deep/x", "$"}));
    // An unquoted expansion is split; a quoted one is not.
    EXPECT_EQ(words("$L \"$L\"", {{"L", "a b"}}), (std::vector<std::string>{"a", "b", "a b"}));
    EXPECT_EQ(words("''"), (std::vector<std::string>{""}));
    EXPECT_FALSE(process_words("${X", '\\', vars({})));
    EXPECT_FALSE(process_words("${X#y}", '\\', vars({})));
    EXPECT_FALSE(process_words("${}", '\\', vars({})));
    EXPECT_FALSE(process_words("'open", '\\', vars({})));
    EXPECT_FALSE(process_words("${X:?must be set}", '\\', vars({})));
    auto one = process_word("  a  b ", '\\', vars({}));
    ASSERT_TRUE(one);
    EXPECT_EQ(*one, "  a  b ");
}

TEST(Words, KeyValues) {
    auto kv = parse_key_values("A=1 B=\"two words\" C=$A D=${NEW:-n}", '\\', vars({{"A", "old"}}), true, false);
    ASSERT_TRUE(kv) << kv.error().message;
    ASSERT_EQ(kv->size(), 4u);
    EXPECT_EQ((*kv)[1].value, "two words");
    EXPECT_EQ((*kv)[2].value, "old"); // the value from before this instruction, as Docker documents
    EXPECT_EQ((*kv)[3].value, "n");
    auto legacy = parse_key_values("PATH /a:/b  c", '\\', vars({}), true, false);
    ASSERT_TRUE(legacy);
    ASSERT_EQ(legacy->size(), 1u);
    EXPECT_EQ((*legacy)[0].key, "PATH");
    EXPECT_EQ((*legacy)[0].value, "/a:/b  c");
    auto args = parse_key_values("A B=2", '\\', vars({}), false, true);
    ASSERT_TRUE(args);
    EXPECT_FALSE((*args)[0].value);
    EXPECT_EQ((*args)[1].value, "2");
    EXPECT_FALSE(parse_key_values("=x", '\\', vars({}), false, false));
    EXPECT_FALSE(parse_key_values("A", '\\', vars({}), false, false));
    EXPECT_TRUE(predefined_arg("https_proxy"));
    EXPECT_FALSE(predefined_arg("HOME"));
}

TEST(Containerfile, Healthcheck) {
    auto cf = parse_containerfile("FROM x\nHEALTHCHECK --interval=1m30s --retries=3 CMD [\"curl\", \"-f\", \"x\"]\n"
                                  "HEALTHCHECK CMD curl -f x || exit 1\nHEALTHCHECK NONE\nHEALTHCHECK --timeout=3x CMD a\n");
    ASSERT_TRUE(cf) << cf.error().message;
    const auto& s = cf->stages[0].steps;
    auto a = healthcheck(s[0]);
    ASSERT_TRUE(a) << a.error().message;
    EXPECT_EQ((*a)["Test"].dump(), R"(["CMD","curl","-f","x"])");
    EXPECT_EQ((*a)["Interval"], 90000000000LL);
    EXPECT_EQ((*a)["Retries"], 3);
    EXPECT_EQ((*healthcheck(s[1]))["Test"].dump(), R"(["CMD-SHELL","curl -f x || exit 1"])");
    EXPECT_EQ((*healthcheck(s[2]))["Test"].dump(), R"(["NONE"])");
    auto bad = healthcheck(s[3]);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().message, "HEALTHCHECK --timeout: invalid duration \"3x\"");
}
