// SPDX-License-Identifier: MIT
// export-app's reading of a machine's (hostile) desktop entry and the host entry it writes.
#include <gtest/gtest.h>

#include "machine/desktop_entry.hpp"

namespace ctr::machine {

TEST(DesktopEntry, KeepsTheAllowedKeysOfTheMainGroup) {
    auto e =
        parse_desktop_entry("# c\n[Desktop Entry]\r\nType=Application\nName = Gedit\nExec=gedit %U\n"
                            "Icon=org.gnome.gedit\nTryExec=/bin/false\nDBusActivatable=true\nTerminal=true\n"
                            "Comment=bad\x1b]0;x\n[Desktop Action new]\nExec=/bin/evil\nName=Evil\n");
    ASSERT_TRUE(e) << e.error().message;
    EXPECT_EQ(e->name, "Gedit");
    EXPECT_EQ(e->exec, "gedit %U");
    EXPECT_EQ(e->icon, "org.gnome.gedit");
    EXPECT_EQ(e->comment, ""); // a control character: dropped
    EXPECT_TRUE(e->terminal);
    std::string host = host_desktop_entry(*e, "/usr/bin/container", "dev", "/h/icon.png");
    EXPECT_EQ(host,
              "[Desktop Entry]\nType=Application\nName=Gedit (on dev)\nIcon=/h/icon.png\nTerminal=true\n"
              "Exec=/usr/bin/container machine run -n dev -- gedit %U\nX-Container-Machine=dev\n");
    EXPECT_NE(host_desktop_entry(*e, "/opt/my apps/container", "dev", "")
                  .find("Exec=\"/opt/my apps/container\" machine run"),
              std::string::npos);
}

TEST(DesktopEntry, RefusesWhatIsNoApplication) {
    EXPECT_FALSE(parse_desktop_entry("[Desktop Entry]\nType=Link\nName=x\nExec=x\n"));
    EXPECT_FALSE(parse_desktop_entry("[Desktop Entry]\nType=Application\nName=x\n"));
    EXPECT_FALSE(parse_desktop_entry("[Other]\nType=Application\nName=x\nExec=x\n"));
    EXPECT_FALSE(parse_desktop_entry(std::string("\0\xff", 2)));
}

TEST(DesktopEntry, SafeNames) {
    EXPECT_TRUE(safe_name("org.gnome.gedit"));
    EXPECT_TRUE(safe_name("g++"));
    for (const char* bad : {"", ".", "..", "a/b", "a b", "x\n"})
        EXPECT_FALSE(safe_name(bad)) << bad;
}

} // namespace ctr::machine
