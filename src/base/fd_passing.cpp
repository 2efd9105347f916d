// SPDX-License-Identifier: MIT
// SCM_RIGHTS send and receive of a single descriptor.
#include "base/fd_passing.hpp"

#include <sys/socket.h>

#include <cstring>

namespace ctr {

namespace {
struct Message {
    char byte = 'f';
    struct iovec iov {};
    alignas(struct cmsghdr) char ctrl[CMSG_SPACE(sizeof(int))] = {};
    struct msghdr msg {};
    Message() {
        iov = {&byte, 1};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = ctrl;
        msg.msg_controllen = sizeof ctrl;
    }
};
} // namespace

bool send_fd(int sock, int fd) {
    Message m;
    struct cmsghdr* cm = CMSG_FIRSTHDR(&m.msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cm), &fd, sizeof(int));
    return ::sendmsg(sock, &m.msg, 0) == 1;
}

int recv_fd(int sock) {
    Message m;
    if (::recvmsg(sock, &m.msg, MSG_CMSG_CLOEXEC) != 1) return -1;
    struct cmsghdr* cm = CMSG_FIRSTHDR(&m.msg);
    if (!cm || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) return -1;
    int fd = -1;
    std::memcpy(&fd, CMSG_DATA(cm), sizeof(int));
    return fd;
}

} // namespace ctr
