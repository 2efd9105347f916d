// SPDX-License-Identifier: MIT
// `container build`: runs a parsed Containerfile stage by stage. RUN steps run in a throwaway machine
// (runtime::run_step: the machine's namespaces, id map, mount plan and seccomp filter, no init); COPY
// writes into the step's overlay from a child in the same user namespace; each step that changes files
// becomes one layer (store/layer_writer), other instructions edit the config (oci/changes). Each step
// is cached under a key of its parent, its expanded instruction and the hash of what it copies.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "oci/digest.hpp"
#include "store/image_source.hpp"
#include "store/store.hpp"

namespace ctr::build {

struct StepEvent {
    enum Kind { start, cached, output } kind; // a step begins, a step was found in the cache, its output
    int number = 0; // 1-based over the stages that are built
    int total = 0;
    std::string text; // "[stage] INSTRUCTION …" for start/cached, raw bytes for output
};

struct BuildOptions {
    std::string context;   // directory
    std::string file;      // the Containerfile; empty: CONTEXT/Containerfile, else CONTEXT/Dockerfile
    std::vector<std::string> tags;
    std::map<std::string, std::string> build_args;
    std::string target;    // stage name; empty: the last stage
    bool no_cache = false;
    bool pull = false;     // pull FROM images even when stored
    std::vector<std::pair<std::string, std::string>> labels;
    // Pulls `ref` into the store (the CLI's pull with its progress) and returns its stored name.
    store::PullFn pull_image;
    std::function<void(const StepEvent&)> progress;
};

struct BuildResult {
    oci::Digest manifest;
    std::vector<std::string> names;
    int steps = 0, cached = 0, layers = 0;
};

Result<BuildResult> build(store::Store& store, const BuildOptions& o);

} // namespace ctr::build
