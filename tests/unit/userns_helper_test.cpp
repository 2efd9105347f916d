// SPDX-License-Identifier: MIT
// The user-namespace helper: requests from several threads, each in its own worker with the map
// applied, fds passed along, errors and dead workers reported. Needs root (it writes the id map itself).
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>
#include <vector>

#include "base/fs.hpp"
#include "runtime/userns_helper.hpp"

namespace ctr::runtime {

namespace {

// Creates the file the request names and writes the uid it ran as (inside) into the passed fd.
Result<void> handler(const std::string& request, int fd) {
    UniqueFd out(fd);
    if (request == "fail") return Error{"refused on purpose", EACCES};
    if (request == "crash") std::abort();
    UniqueFd f(::open(request.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!f.valid()) return sys_error(errno, fmt::format("create \"{}\"", request));
    std::string uid = std::to_string(::getuid());
    if (!out.valid() || ::write(out.get(), uid.data(), uid.size()) != static_cast<ssize_t>(uid.size()))
        return make_error("no fd to write to");
    return {};
}

IdMap shifted_map() {
    IdMap m;
    m.uids.push_back({0, 200000, 65536});
    m.gids.push_back({0, 200000, 65536});
    return m;
}

} // namespace

TEST(UsernsHelper, ServesThreadsInWorkersWithTheMap) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to write an arbitrary id map";
    char tmpl[] = "/tmp/userns-helper-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    std::string dir = tmpl;
    ASSERT_EQ(::chmod(dir.c_str(), 0777), 0); // the namespace's root is uid 200000 outside
    auto helper = UsernsHelper::start(shifted_map(), handler);
    ASSERT_TRUE(helper) << helper.error().message;

    constexpr int k_threads = 8;
    std::vector<std::string> results(k_threads);
    std::vector<std::thread> threads;
    for (int i = 0; i < k_threads; ++i)
        threads.emplace_back([&, i] {
            std::string out = fmt::format("{}/out-{}", dir, i);
            UniqueFd fd(::open(out.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
            auto r = helper->call(fmt::format("{}/made-{}", dir, i), fd.get());
            results[i] = r ? *fs::read_file(out) : r.error().message;
        });
    for (auto& t : threads)
        t.join();
    for (int i = 0; i < k_threads; ++i) {
        EXPECT_EQ(results[i], "0") << "request " << i; // root inside
        struct stat st {};
        ASSERT_EQ(::stat(fmt::format("{}/made-{}", dir, i).c_str(), &st), 0);
        EXPECT_EQ(st.st_uid, 200000u); // the map applied outside
    }

    auto fail = helper->call("fail", -1);
    ASSERT_FALSE(fail);
    EXPECT_EQ(fail.error().message, "refused on purpose");
    EXPECT_EQ(fail.error().errnum, EACCES);
    auto crash = helper->call("crash", -1);
    ASSERT_FALSE(crash);
    EXPECT_EQ(crash.error().message, "a user namespace worker died without answering");
    UniqueFd devnull(::open("/dev/null", O_WRONLY | O_CLOEXEC));
    EXPECT_TRUE(helper->call(dir + "/after-crash", devnull.get())); // the helper outlives its workers
    EXPECT_TRUE(fs::exists(dir + "/after-crash"));
    (void)fs::remove_tree(dir);
}

TEST(UsernsHelper, IdentityMapRunsInTheCallingThread) {
    auto helper = UsernsHelper::start(IdMap{{{0, 0, 4294967295u}}, {{0, 0, 4294967295u}}},
                                      [](const std::string& request, int fd) -> Result<void> {
                                          UniqueFd owned(fd);
                                          if (request != "here") return make_error("wrong request");
                                          return {};
                                      });
    ASSERT_TRUE(helper);
    EXPECT_TRUE(helper->call("here", -1));
}

} // namespace ctr::runtime
