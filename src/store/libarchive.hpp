// SPDX-License-Identifier: MIT
// The libarchive functions the store uses, loaded on first use (see base/lazy_lib.hpp). Include this
// instead of <archive.h>; code in ctr:: calls them by their usual names. Also the one place that says
// which compressions the store reads.
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include <memory>

#include "base/lazy_lib.hpp"
#include "base/result.hpp"

namespace ctr {

inline constexpr LazyLibrary k_libarchive{"libarchive.so.13", "libarchive13"};

CTR_LAZY_FUNCTION(k_libarchive, archive_entry_atime)
CTR_LAZY_FUNCTION(k_libarchive, archive_entry_atime_is_set)
CTR_LAZY_FUNCTION(k_libarchive, archive_entry_atime_nsec)
CTR_LAZY_FUNCTION(k_libarchive, archive_entry_filetype)
CTR_LAZY_FUNCTION(k_libarchive, archive_entry_free)
CTR_LAZY_FUNCTION(k_libarchive, archive_entry_gid)
CTR_LAZY_FUNCTION(k_libarchive, archive_entry_hardlink)
CTR_LAZY_FUNCTION(k_libarchive, archive_entry_mtime)
CTR_LAZY_FUNCTION(k_libarchive, archive_entry_mtime_nsec)
CTR_LAZY_FUNCTION(k_libarchive, archive_entry_new)
CTR_LAZY_FUNCTION(k_libarchive, archive_entry_pathname)
CTR_LAZY_FUNCTION(k_libarchive, archive_entry_perm)
CTR_LAZY_FUNCTION(k_libarchive, archive_entry_rdevmajor)
CTR_LAZY_FUNCTION(k_libarchive, archive_entry_rdevminor)
CTR_LAZY_FUNCTION(k_libarchive, archive_entry_set_filetype)
CTR_LAZY_FUNCTION(k_libarchive, archive_entry_set_mtime)
CTR_LAZY_FUNCTION(k_libarchive, archive_entry_set_pathname)
CTR_LAZY_FUNCTION(k_libarchive, archive_entry_set_perm)
CTR_LAZY_FUNCTION(k_libarchive, archive_entry_set_size)
CTR_LAZY_FUNCTION(k_libarchive, archive_entry_set_gid)
CTR_LAZY_FUNCTION(k_libarchive, archive_entry_set_hardlink)
CTR_LAZY_FUNCTION(k_libarchive, archive_entry_set_rdevmajor)
CTR_LAZY_FUNCTION(k_libarchive, archive_entry_set_rdevminor)
CTR_LAZY_FUNCTION(k_libarchive, archive_entry_set_symlink)
CTR_LAZY_FUNCTION(k_libarchive, archive_entry_set_uid)
CTR_LAZY_FUNCTION(k_libarchive, archive_entry_xattr_add_entry)
CTR_LAZY_FUNCTION(k_libarchive, archive_entry_size)
CTR_LAZY_FUNCTION(k_libarchive, archive_entry_symlink)
CTR_LAZY_FUNCTION(k_libarchive, archive_entry_uid)
CTR_LAZY_FUNCTION(k_libarchive, archive_entry_xattr_next)
CTR_LAZY_FUNCTION(k_libarchive, archive_entry_xattr_reset)
CTR_LAZY_FUNCTION(k_libarchive, archive_errno)
// Never null: libarchive sets no message for some failures (a gzip member with a damaged header, for
// one), and formatting a null char* into an error message throws.
inline constexpr auto archive_error_string = [](struct archive* a) {
    static const auto fn = reinterpret_cast<decltype(&::archive_error_string)>(
        k_libarchive.symbol("archive_error_string"));
    const char* text = fn(a);
    return text ? text : "unknown libarchive error";
};
CTR_LAZY_FUNCTION(k_libarchive, archive_read_data)
CTR_LAZY_FUNCTION(k_libarchive, archive_read_data_block)
CTR_LAZY_FUNCTION(k_libarchive, archive_read_data_skip)
CTR_LAZY_FUNCTION(k_libarchive, archive_read_free)
CTR_LAZY_FUNCTION(k_libarchive, archive_read_new)
CTR_LAZY_FUNCTION(k_libarchive, archive_read_next_header)
CTR_LAZY_FUNCTION(k_libarchive, archive_read_open)
CTR_LAZY_FUNCTION(k_libarchive, archive_read_open_fd)
CTR_LAZY_FUNCTION(k_libarchive, archive_read_open_filename)
CTR_LAZY_FUNCTION(k_libarchive, archive_read_support_filter_gzip)
CTR_LAZY_FUNCTION(k_libarchive, archive_read_support_filter_zstd)
CTR_LAZY_FUNCTION(k_libarchive, archive_read_support_format_raw)
CTR_LAZY_FUNCTION(k_libarchive, archive_read_support_format_tar)
CTR_LAZY_FUNCTION(k_libarchive, archive_write_add_filter_gzip)
CTR_LAZY_FUNCTION(k_libarchive, archive_write_close)
CTR_LAZY_FUNCTION(k_libarchive, archive_write_data)
CTR_LAZY_FUNCTION(k_libarchive, archive_write_free)
CTR_LAZY_FUNCTION(k_libarchive, archive_write_header)
CTR_LAZY_FUNCTION(k_libarchive, archive_write_new)
CTR_LAZY_FUNCTION(k_libarchive, archive_write_open)
CTR_LAZY_FUNCTION(k_libarchive, archive_write_open_fd)
CTR_LAZY_FUNCTION(k_libarchive, archive_write_set_bytes_in_last_block)
CTR_LAZY_FUNCTION(k_libarchive, archive_write_set_bytes_per_block)
CTR_LAZY_FUNCTION(k_libarchive, archive_write_set_filter_option)
CTR_LAZY_FUNCTION(k_libarchive, archive_write_set_format_pax_restricted)
CTR_LAZY_FUNCTION(k_libarchive, archive_write_set_format_raw)

// Owning pointers for the objects the store creates.
struct ArchiveReadDeleter {
    void operator()(struct archive* a) const { archive_read_free(a); }
};
struct ArchiveWriteDeleter {
    void operator()(struct archive* a) const { archive_write_free(a); }
};
struct ArchiveEntryDeleter {
    void operator()(struct archive_entry* e) const { archive_entry_free(e); }
};
using ArchiveReader = std::unique_ptr<struct archive, ArchiveReadDeleter>;
using ArchiveWriter = std::unique_ptr<struct archive, ArchiveWriteDeleter>;
using ArchiveEntry = std::unique_ptr<struct archive_entry, ArchiveEntryDeleter>;

namespace store {

// Lets reader `a` decompress gzip and zstd, the compressions of OCI layers, with libarchive's built-in
// decoders; anything else reaches the format reader as it is. Fails when libarchive would run an
// external program (`gzip -d`) instead, which it signals with ARCHIVE_WARN: the store never starts a
// program to decompress.
Result<void> support_store_filters(struct archive* a);

// "xz", "bzip2", … when the file at `path` starts with the magic of a compression the store does not
// read; nullptr otherwise (including when it cannot be read). For error messages only.
const char* unsupported_compression(const std::string& path);
// The same for an open file, read from its start (pread: the offset does not move).
const char* unsupported_compression(int fd);

} // namespace store

} // namespace ctr
