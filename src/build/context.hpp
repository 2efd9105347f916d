// SPDX-License-Identifier: MIT
// The build context and COPY: `.containerignore`/`.dockerignore` rules (Docker's pattern matching with
// `**` and `!` exceptions), choosing the sources a COPY names (paths and globs), hashing them for the
// build cache, and copying them into a step's root. The context and the image are both hostile: every
// path is resolved with openat2 inside its root, and nothing below a source is reached through a link.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "base/result.hpp"

namespace ctr::build {

// Docker's glob: '*' and '?' within one path component, '[…]' classes, '\' escapes, '**' across
// components ("**/x", "a/**"). Matches the whole of `path`.
bool glob_match(const std::string& pattern, const std::string& path);

class IgnoreRules {
public:
    // The text of a .dockerignore: one pattern a line, '#' comments, leading '/' dropped, '!' exceptions.
    static IgnoreRules parse(const std::string& text);
    // Reads CONTEXT/.containerignore, else CONTEXT/.dockerignore (none: nothing is ignored).
    static Result<IgnoreRules> for_context(int context_fd);
    // `path` (relative, no leading '/') is left out: the last pattern that matches it or one of its
    // parents decides.
    bool excluded(const std::string& path) const;
    bool empty() const { return m_rules.empty(); }
    bool has_exceptions() const { return m_exceptions; }

private:
    struct Rule {
        std::string pattern;
        bool exception;
    };
    std::vector<Rule> m_rules;
    bool m_exceptions = false;
};

// What COPY/ADD name: each source path relative to `root` (a directory fd), globs expanded in name
// order. A source that matches nothing (or only ignored files) is an error naming it.
Result<std::vector<std::string>> select_sources(int root, const std::vector<std::string>& patterns,
                                                const IgnoreRules& ignore);

// SHA-256 (hex) over the sources' trees: names, types, modes, owners, sizes, link targets and data.
Result<std::string> hash_sources(int root, const std::vector<std::string>& sources, const IgnoreRules& ignore);

struct CopyOptions {
    std::string dest;              // absolute path inside the image
    bool dest_is_dir = false;      // it ended in '/', or several sources were named
    uid_t uid = 0;                 // --chown, resolved (ids inside the image)
    gid_t gid = 0;
    std::optional<mode_t> mode;    // --chmod
    const IgnoreRules* ignore = nullptr; // for sources from the context
    bool chowned = false;          // uid/gid came from --chown (else an extracted archive's own owners)
    bool extract = false;          // ADD: a source file that is a tar (plain, gzip or zstd) is unpacked
                                   // into the destination directory instead of copied
};

// Copies `sources` (from select_sources on `src_root`) into the image root `dst_root` (an O_PATH fd
// of the step's mounted root) with Docker's rules: a directory's contents go into the destination, a
// file becomes dest or dest/NAME; parents are made (0755, owned like the files); modes and times are
// kept unless --chmod; links are copied as links. Runs as root of the step's user namespace.
Result<void> copy_sources(int src_root, const std::vector<std::string>& sources, int dst_root,
                          const CopyOptions& o);

// Unpacks the tar `archive` (an open file, read from its start) below the directory `dest` of the image
// root `dst_root`: names are taken relative to dest ("/" and ".." dropped) and resolved inside the
// root, existing files are replaced, directories merged; owners are the archive's unless o.uid/o.gid
// were given (chown), device nodes are skipped. Fails with "not an archive" (errno EINVAL) when the
// file is no tar, before anything is written.
Result<void> extract_archive(int archive, int dst_root, const std::string& dest, const CopyOptions& o,
                             bool chown);

// "user[:group]" of --chown to ids, names looked up in the image's /etc/passwd and /etc/group
// (resolved inside `root`). A user without group takes its primary group (0 for a bare number).
Result<std::pair<uid_t, gid_t>> resolve_owner(int root, const std::string& spec);

} // namespace ctr::build
