// SPDX-License-Identifier: MIT
// Desktop forwarding plan: only the named variables, only sockets that exist, the Xauthority cookie of
// the forwarded display only (as FamilyWild), and never through a link.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>

#include "runtime/desktop.hpp"

namespace ctr::runtime {

namespace {

std::string field(const std::string& s) {
    return std::string{static_cast<char>(s.size() >> 8), static_cast<char>(s.size() & 0xff)} + s;
}
std::string entry(uint16_t family, const std::string& host, const std::string& display,
                  const std::string& cookie) {
    return std::string{static_cast<char>(family >> 8), static_cast<char>(family & 0xff)} + field(host) +
           field(display) + field("MIT-MAGIC-COOKIE-1") + field(cookie);
}

struct Dir {
    std::string path;
    Dir() {
        char t[] = "/tmp/desktop-test.XXXXXX";
        path = ::mkdtemp(t);
    }
    ~Dir() { (void)std::system(("rm -rf " + path).c_str()); }
    int listen(const std::string& name) const {
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::string p = path + "/" + name;
        std::snprintf(a.sun_path, sizeof a.sun_path, "%s", p.c_str());
        EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << p;
        return fd;
    }
};

} // namespace

TEST(Desktop, XauthorityKeepsTheDisplaysCookiesAsWild) {
    std::string data =
        entry(256, "vm", "0", "aaaa") + entry(256, "vm", "57", "bbbb") + entry(0, "1.2.3.4", "570", "c");
    EXPECT_EQ(filter_xauthority(data, "57"), entry(0xffff, "vm", "57", "bbbb"));
    EXPECT_EQ(filter_xauthority(data, "1"), "");
    EXPECT_EQ(filter_xauthority(data.substr(0, data.size() - 3), "0"),
              entry(0xffff, "vm", "0", "aaaa")); // truncated
}

TEST(Desktop, PlansOnlyWhatTheCallerHas) {
    Dir d;
    int w = d.listen("wayland-1"), b = d.listen("bus");
    ::mkdir((d.path + "/pulse").c_str(), 0700);
    int p = d.listen("pulse/native");
    std::string xauth = d.path + "/xauth";
    std::ofstream(xauth) << entry(256, "vm", "9", "cookie");
    std::map<std::string, std::string> env = {{"XDG_RUNTIME_DIR", d.path},
                                              {"WAYLAND_DISPLAY", "wayland-1"},
                                              {"DISPLAY", ":9.0"},
                                              {"XAUTHORITY", xauth},
                                              {"SECRET_TOKEN", "never"}};
    auto get = [&](const char* n) -> const char* {
        auto it = env.find(n);
        return it == env.end() ? nullptr : it->second.c_str();
    };
    DesktopPlan plan = plan_desktop(get);
    std::vector<std::string> whats;
    for (const auto& s : plan.sockets)
        whats.push_back(s.what + ":" + s.target);
    // /tmp/.X11-unix is there on hosts with X; no pipewire-0 here.
    std::erase(whats, "x11:/tmp/.X11-unix");
    EXPECT_EQ(whats, (std::vector<std::string>{"wayland:wayland-1", "pulseaudio:pulse/native", "dbus:bus"}));
    EXPECT_EQ(plan.xauthority, entry(0xffff, "vm", "9", "cookie"));
    for (const auto& e : plan.env)
        EXPECT_EQ(e.find("SECRET"), std::string::npos);
    EXPECT_NE(std::find(plan.env.begin(), plan.env.end(), "XDG_RUNTIME_DIR=@RUNTIME@"), plan.env.end());
    EXPECT_NE(std::find(plan.env.begin(), plan.env.end(), "DBUS_SESSION_BUS_ADDRESS=unix:path=@RUNTIME@/bus"),
              plan.env.end());

    // A link where the Xauthority file should be is not followed; a socket that is not there is not planned.
    ::unlink(xauth.c_str());
    ASSERT_EQ(::symlink((d.path + "/elsewhere").c_str(), xauth.c_str()), 0);
    std::ofstream(d.path + "/elsewhere") << entry(256, "vm", "9", "stolen");
    env["WAYLAND_DISPLAY"] = "wayland-2";
    plan = plan_desktop(get);
    EXPECT_EQ(plan.xauthority, "");
    for (const auto& s : plan.sockets)
        EXPECT_NE(s.what, "wayland");
    ::close(w);
    ::close(b);
    ::close(p);

    // Nothing of the caller's: nothing planned.
    EXPECT_TRUE(plan_desktop([](const char*) -> const char* { return nullptr; }).empty());
}

} // namespace ctr::runtime
