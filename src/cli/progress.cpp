// SPDX-License-Identifier: MIT
#include "cli/progress.hpp"

#include <unistd.h>

#include <fmt/format.h>

#include "base/size.hpp"

namespace ctr::cli {

using Clock = std::chrono::steady_clock;

namespace {

const char* state_name(registry::PullObserver::State s, PullProgress::Direction dir) {
    using S = registry::PullObserver::State;
    switch (s) {
    case S::waiting: return "waiting";
    case S::downloading: return dir == PullProgress::Direction::push ? "uploading" : "downloading";
    case S::unpacking: return "unpacking";
    case S::done: return "done";
    case S::present: return "already present";
    }
    return "";
}

} // namespace

Result<PullProgress::Mode> PullProgress::parse_mode(const std::string& text) {
    if (text == "auto")
        return ::isatty(STDOUT_FILENO) && ::isatty(STDERR_FILENO) ? Mode::ansi : Mode::none;
    if (text == "none") return Mode::none;
    if (text == "plain") return Mode::plain;
    if (text == "ansi" || text == "color" || text == "tty") return Mode::ansi;
    return make_error("invalid progress type \"{}\": expected auto, plain, ansi or none", text);
}

PullProgress::PullProgress(Mode m, Direction d) : m_mode(m), m_dir(d), m_start(Clock::now()) {}

void PullProgress::layers(const std::vector<oci::Descriptor>& layers) {
    std::lock_guard<std::mutex> g(m_mu);
    for (const auto& l : layers)
        m_rows.push_back({l.digest.short_hex(), static_cast<uint64_t>(std::max<int64_t>(l.size, 0)), 0, State::waiting});
    m_start = Clock::now();
    draw(true);
}

void PullProgress::bytes(size_t layer, uint64_t done) {
    std::lock_guard<std::mutex> g(m_mu);
    if (layer >= m_rows.size()) return;
    m_rows[layer].done = done;
    draw(false);
}

void PullProgress::state(size_t layer, State s) {
    std::lock_guard<std::mutex> g(m_mu);
    if (layer >= m_rows.size()) return;
    Row& r = m_rows[layer];
    r.state = s;
    if (s == State::done || s == State::present || s == State::unpacking) r.done = r.total;
    if (m_mode == Mode::plain) {
        if (s == State::downloading)
            fmt::print(stderr, "{}: {} {}\n", r.id, state_name(s, m_dir), format_size(r.total));
        else
            fmt::print(stderr, "{}: {}\n", r.id, state_name(s, m_dir));
        return;
    }
    draw(true);
}

std::string PullProgress::total_line() const {
    uint64_t done = 0, total = 0;
    for (const auto& r : m_rows) {
        done += r.done;
        total += r.total;
    }
    double secs = std::chrono::duration<double>(Clock::now() - m_start).count();
    uint64_t rate = secs > 0.05 ? static_cast<uint64_t>(static_cast<double>(done) / secs) : 0;
    return fmt::format("total  {} / {}  {}/s  {:.1f}s", format_size(done), format_size(total), format_size(rate), secs);
}

void PullProgress::draw(bool force) {
    if (m_mode != Mode::ansi) return;
    auto now = Clock::now();
    if (!force && now - m_last_draw < std::chrono::milliseconds(100)) return;
    m_last_draw = now;
    std::string out;
    if (m_drawn > 0) out += fmt::format("\x1b[{}A", m_drawn);
    for (const auto& r : m_rows) {
        out += fmt::format("\r\x1b[2K{}  {:<15}  {:>10} / {}\n", r.id, state_name(r.state, m_dir), format_size(r.done),
                           format_size(r.total));
    }
    out += "\r\x1b[2K" + total_line() + "\n";
    m_drawn = m_rows.size() + 1;
    fmt::print(stderr, "{}", out);
    std::fflush(stderr);
}

void PullProgress::finish(bool ok) {
    std::lock_guard<std::mutex> g(m_mu);
    if (m_mode == Mode::ansi) draw(true);
    if (m_mode == Mode::plain && ok && !m_rows.empty()) fmt::print(stderr, "{}\n", total_line());
}

} // namespace ctr::cli
