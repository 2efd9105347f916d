// SPDX-License-Identifier: MIT
// The pull progress display on stderr: a live table on a terminal (per-layer state and bytes, the total
// and the rate), one line per event in plain mode, nothing in none mode.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "registry/pull.hpp"

namespace ctr::cli {

class PullProgress : public registry::PullObserver {
public:
    enum class Mode { none, plain, ansi };
    // auto: ansi when stdout and stderr are terminals, else none. Also plain, none, ansi (alias color, tty).
    static Result<Mode> parse_mode(const std::string& text);
    // A push shows the same table; its transfers read "uploading".
    enum class Direction { pull, push };
    explicit PullProgress(Mode m, Direction d = Direction::pull);

    void layers(const std::vector<oci::Descriptor>& layers) override;
    void bytes(size_t layer, uint64_t done) override;
    void state(size_t layer, State s) override;
    // The last frame and a summary line (not in none mode).
    void finish(bool ok);

private:
    struct Row {
        std::string id;
        uint64_t total = 0, done = 0;
        State state = State::waiting;
    };
    void draw(bool force); // m_mu held
    std::string total_line() const;

    std::mutex m_mu;
    Mode m_mode;
    Direction m_dir = Direction::pull;
    std::vector<Row> m_rows;
    std::chrono::steady_clock::time_point m_start, m_last_draw;
    size_t m_drawn = 0;
};

} // namespace ctr::cli
