// SPDX-License-Identifier: MIT
// The user-namespace helper: one request socket, one worker per request, a reply socket per request.
#include "runtime/userns_helper.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "runtime/userns.hpp"

namespace ctr::runtime {

namespace {

// A request is one datagram: the request text, with the reply socket and the caller's fd (if any) as
// SCM_RIGHTS. Replies are one datagram "<errno>\n<message>" on the reply socket, "0\n" for success.
constexpr size_t k_max_message = 64 << 10;

bool send_request(int sock, const std::string& text, const std::vector<int>& fds) {
    struct iovec iov = {const_cast<char*>(text.data()), text.size()};
    alignas(struct cmsghdr) char ctrl[CMSG_SPACE(2 * sizeof(int))] = {};
    struct msghdr msg {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctrl;
    msg.msg_controllen = CMSG_SPACE(fds.size() * sizeof(int));
    struct cmsghdr* cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
    std::memcpy(CMSG_DATA(cm), fds.data(), fds.size() * sizeof(int));
    ssize_t n;
    do {
        n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n == static_cast<ssize_t>(text.size());
}

// One request; false at the end of the stream (the caller closed its socket) or on an error.
bool recv_request(int sock, std::string& text, std::vector<UniqueFd>& fds) {
    text.assign(k_max_message, '\0');
    struct iovec iov = {text.data(), text.size()};
    alignas(struct cmsghdr) char ctrl[CMSG_SPACE(2 * sizeof(int))] = {};
    struct msghdr msg {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctrl;
    msg.msg_controllen = sizeof ctrl;
    ssize_t n;
    do {
        n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) return false;
    text.resize(static_cast<size_t>(n));
    fds.clear();
    for (struct cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
        size_t count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; ++i) {
            int fd = -1;
            std::memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
            fds.emplace_back(fd);
        }
    }
    return true;
}

void send_reply(int sock, const Result<void>& r) {
    std::string text = r ? "0\n" : fmt::format("{}\n{}", r.error().errnum, r.error().message);
    if (text.size() > k_max_message) text.resize(k_max_message);
    (void)!::send(sock, text.data(), text.size(), MSG_NOSIGNAL); // a caller gone away needs no answer
}

// The helper's life after it is root of the namespace: a worker per request until the caller closes
// the socket, then wait for the workers still running.
[[noreturn]] void serve(int sock, const UsernsHelper::Handler& handler) {
    std::string text;
    std::vector<UniqueFd> fds;
    while (recv_request(sock, text, fds)) {
        if (fds.empty()) continue; // no reply socket: nobody to answer
        pid_t pid = ::fork();
        if (pid == 0) {
            ::close(sock);
            int fd = fds.size() > 1 ? fds[1].release() : -1;
            send_reply(fds[0].get(), handler(text, fd));
            ::_exit(0);
        }
        if (pid < 0) send_reply(fds[0].get(), sys_error(errno, "fork a user namespace worker"));
        fds.clear();
        while (::waitpid(-1, nullptr, WNOHANG) > 0) {
        }
    }
    while (::wait(nullptr) > 0 || errno == EINTR) {
    }
    ::_exit(0);
}

Error parse_reply(const std::string& text) {
    auto nl = text.find('\n');
    return Error{nl == std::string::npos ? text : text.substr(nl + 1), std::atoi(text.c_str())};
}

} // namespace

Result<UsernsHelper> UsernsHelper::start(const IdMap& map, Handler handler) {
    UsernsHelper h;
    h.m_handler = std::move(handler);
    if (map.identity()) return h;
    int sv[2], st[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return sys_error(errno, "socketpair");
    UniqueFd mine(sv[0]), theirs(sv[1]);
    if (::pipe2(st, O_CLOEXEC) != 0) return sys_error(errno, "pipe");
    UniqueFd status_r(st[0]), status_w(st[1]);
    pid_t pid = ::fork();
    if (pid < 0) return sys_error(errno, "fork the user namespace helper");
    if (pid == 0) {
        mine.reset();
        status_r.reset();
        auto r = enter_userns(map);
        std::string msg = r ? "0\n" : fmt::format("{}\n{}", r.error().errnum, r.error().message);
        (void)!::write(status_w.get(), msg.data(), msg.size()); // a helper that died shows as no answer
        if (!r) ::_exit(1);
        status_w.reset();
        ::umask(0);
        serve(theirs.get(), h.m_handler);
    }
    theirs.reset();
    status_w.reset();
    h.m_pid = pid;
    h.m_sock = std::move(mine);
    std::string msg;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(status_r.get(), buf, sizeof buf)) != 0) {
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) break;
        msg.append(buf, static_cast<size_t>(n));
    }
    // On failure h's destructor reaps the helper.
    if (msg.empty()) return make_error("the user namespace helper died before it was ready");
    if (msg != "0\n") return wrap(parse_reply(msg), "start the user namespace helper");
    return h;
}

Result<void> UsernsHelper::call(const std::string& request, int fd) const {
    if (m_pid < 0) return m_handler(request, fd >= 0 ? ::fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1);
    if (request.size() > k_max_message) return make_error("user namespace request too long");
    int rv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, rv) != 0) return sys_error(errno, "socketpair");
    UniqueFd reply(rv[0]), reply_theirs(rv[1]);
    std::vector<int> fds = {reply_theirs.get()};
    if (fd >= 0) fds.push_back(fd);
    if (!send_request(m_sock.get(), request, fds))
        return make_error("the user namespace helper is gone ({})", std::strerror(errno));
    reply_theirs.reset(); // the worker holds the only other end: its death ends the read below
    std::string text(k_max_message, '\0');
    ssize_t n;
    do {
        n = ::recv(reply.get(), text.data(), text.size(), 0);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) return make_error("a user namespace worker died without answering");
    text.resize(static_cast<size_t>(n));
    if (text == "0\n") return {};
    return parse_reply(text);
}

UsernsHelper::UsernsHelper(UsernsHelper&& o) noexcept
    : m_handler(std::move(o.m_handler)), m_sock(std::move(o.m_sock)), m_pid(std::exchange(o.m_pid, -1)) {}

UsernsHelper::~UsernsHelper() {
    if (m_pid < 0) return;
    m_sock.reset();
    while (::waitpid(m_pid, nullptr, 0) < 0 && errno == EINTR) {
    }
}

} // namespace ctr::runtime
