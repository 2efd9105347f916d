// SPDX-License-Identifier: MIT
// Fixtures for unit tests that work on files: a fresh directory under /tmp, removed with everything
// in it when the test ends, and a store opened in such a directory.
#pragma once

#include <gtest/gtest.h>

#include <unistd.h>

#include <optional>
#include <string>

#include "base/fs.hpp"
#include "store/store.hpp"

namespace ctr::test {

class TempDirTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::string tmpl = "/tmp/ctr-unit.XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        m_dir = tmpl;
    }
    void TearDown() override {
        if (!m_dir.empty()) (void)fs::remove_tree(m_dir);
    }

    std::string m_dir;
};

// A store in m_dir/store, empty until the test adds to it.
class StoreTest : public TempDirTest {
protected:
    void SetUp() override {
        TempDirTest::SetUp();
        if (HasFatalFailure()) return;
        auto s = store::Store::open_at(m_dir + "/store");
        ASSERT_TRUE(s) << s.error().message;
        m_store.emplace(std::move(*s));
    }

    std::optional<store::Store> m_store;
};

} // namespace ctr::test
