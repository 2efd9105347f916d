// SPDX-License-Identifier: MIT
// Entry point: everything happens in cli::run.
#include "cli/app.hpp"

int main(int argc, char** argv) {
    return ctr::cli::run(argc, argv);
}
