// SPDX-License-Identifier: MIT
#include "build/context.hpp"

#include <gtest/gtest.h>

using namespace ctr::build;

TEST(Glob, DockerPatterns) {
    EXPECT_TRUE(glob_match("*.log", "a.log"));
    EXPECT_FALSE(glob_match("*.log", "dir/a.log")); // '*' stays in one component
    EXPECT_TRUE(glob_match("**/*.log", "a.log"));   // '**/' may match nothing
    EXPECT_TRUE(glob_match("**/*.log", "x/y/a.log"));
    EXPECT_TRUE(glob_match("dir/**", "dir/a/b"));
    EXPECT_TRUE(glob_match("a/**/b", "a/b"));
    EXPECT_TRUE(glob_match("a/**/b", "a/x/y/b"));
    EXPECT_FALSE(glob_match("a/**/b", "a/x/yb"));
    EXPECT_TRUE(glob_match("?.txt", "a.txt"));
    EXPECT_FALSE(glob_match("?.txt", "/.txt"));
    EXPECT_TRUE(glob_match("[a-c]x", "bx"));
    EXPECT_FALSE(glob_match("[a-c]x", "dx"));
    EXPECT_TRUE(glob_match("\\*", "*"));
    EXPECT_FALSE(glob_match("\\*", "a"));
    EXPECT_FALSE(glob_match("[", "["));                                 // malformed: no match
    EXPECT_FALSE(glob_match(std::string(2000, '*') + "x", std::string(2000, 'a'))); // no blow-up
    std::string deep;
    for (int i = 0; i < 500; ++i)
        deep += "**/";
    EXPECT_FALSE(glob_match(deep + "x", std::string(4000, '/'))); // linear per pattern character
}

TEST(Ignore, LastMatchWinsAndParentsCover) {
    IgnoreRules r = IgnoreRules::parse("# comment\n\n*.log\n!keep.log\n/build\n  secret.txt  \nsub/**/*.tmp\n");
    EXPECT_TRUE(r.has_exceptions());
    EXPECT_TRUE(r.excluded("a.log"));
    EXPECT_FALSE(r.excluded("keep.log"));
    EXPECT_TRUE(r.excluded("build"));
    EXPECT_TRUE(r.excluded("build/out/x")); // a matching parent covers what is below it
    EXPECT_TRUE(r.excluded("secret.txt"));
    EXPECT_FALSE(r.excluded("dir/a.log"));
    EXPECT_TRUE(r.excluded("sub/x/y.tmp"));
    EXPECT_TRUE(r.excluded("sub/y.tmp"));
    EXPECT_FALSE(r.excluded("Containerfile"));
    IgnoreRules all = IgnoreRules::parse("*\n!src\n");
    EXPECT_TRUE(all.excluded("README"));
    EXPECT_FALSE(all.excluded("src"));
    EXPECT_FALSE(all.excluded("src/main.c"));
    EXPECT_TRUE(IgnoreRules::parse("").empty());
}
