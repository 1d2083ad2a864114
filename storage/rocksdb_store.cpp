// The only file that includes RocksDB: rocksdb::Status becomes a message here.
#include "storage/store.hpp"

#include <rocksdb/db.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <filesystem>
#include <unistd.h>

namespace presence::storage {

namespace {

class rocksdb_store : public store {
public:
  rocksdb_store(rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*> handles)
    : db_(db), handles_(std::move(handles)) {}

  ~rocksdb_store() override {
    for (auto* h : handles_)
      db_->DestroyColumnFamilyHandle(h);
    db_->Close();
    delete db_;
  }

  status write(const std::vector<mutation>& batch) override {
    rocksdb::WriteBatch wb;
    for (auto& m : batch) {
      auto* cf = handle(m.k);
      if (m.value)
        wb.Put(cf, m.key, *m.value);
      else
        wb.Delete(cf, m.key);
    }
    auto s = db_->Write(rocksdb::WriteOptions{}, &wb);
    if (!s.ok())
      return "write of " + std::to_string(batch.size()) + " records failed: " + s.ToString();
    return std::nullopt;
  }

  status scan(kind k,
              const std::function<void(std::string_view, std::string_view)>& f) override {
    std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(rocksdb::ReadOptions{}, handle(k))};
    for (it->SeekToFirst(); it->Valid(); it->Next())
      f(std::string_view{it->key().data(), it->key().size()},
        std::string_view{it->value().data(), it->value().size()});
    if (!it->status().ok())
      return std::string{"scan of "} + std::string{to_string(k)} + " failed: "
             + it->status().ToString();
    return std::nullopt;
  }

  std::optional<std::string> get(kind k, std::string_view key) override {
    std::string value;
    auto s = db_->Get(rocksdb::ReadOptions{}, handle(k), rocksdb::Slice{key.data(), key.size()},
                      &value);
    if (!s.ok())
      return std::nullopt;
    return value;
  }

  uint64_t size_bytes() override {
    uint64_t total = 0;
    for (auto* h : handles_) {
      uint64_t v = 0;
      if (db_->GetIntProperty(h, rocksdb::DB::Properties::kLiveSstFilesSize, &v))
        total += v;
      if (db_->GetIntProperty(h, rocksdb::DB::Properties::kCurSizeAllMemTables, &v))
        total += v;
    }
    return total;
  }

  void compact() override {
    rocksdb::CompactRangeOptions opts;
    opts.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    for (auto* h : handles_)
      db_->CompactRange(opts, h, nullptr, nullptr);
  }

private:
  rocksdb::ColumnFamilyHandle* handle(kind k) { return handles_[1 + static_cast<size_t>(k)]; }

  rocksdb::DB* db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_; // default first, then kinds
};

} // namespace

std::unique_ptr<store> open_rocksdb(const std::string& dir, status* why) {
  namespace fs = std::filesystem;
  auto fail = [&](std::string msg) -> std::unique_ptr<store> {
    if (why != nullptr)
      *why = std::move(msg);
    return nullptr;
  };
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return fail("node.data_dir: cannot create '" + dir + "': " + ec.message());
  if (!fs::is_directory(dir, ec))
    return fail("node.data_dir: '" + dir + "' is not a directory");
  if (access(dir.c_str(), W_OK) != 0)
    return fail("node.data_dir: '" + dir + "' is not writable");
  rocksdb::Options opts;
  opts.create_if_missing = true;
  opts.create_missing_column_families = true;
  opts.allow_concurrent_memtable_write = false; // the vector memtable needs it
  rocksdb::ColumnFamilyOptions cf_opts;
  cf_opts.OptimizeLevelStyleCompaction(64 << 20); // 16 MiB memtables per kind
  cf_opts.compression_per_level.clear(); // else it overrides `compression`
  cf_opts.compression = rocksdb::kZSTD;
  // Snapshots are written in sorted batches and read back only by a full scan
  // at start: an append-only vector memtable (sorted once, when flushed) costs
  // a fraction of a skip list per insert.
  cf_opts.memtable_factory = std::make_shared<rocksdb::VectorRepFactory>();
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
    {rocksdb::kDefaultColumnFamilyName, cf_opts}};
  for (auto k : all_kinds)
    cfs.emplace_back(std::string{to_string(k)}, cf_opts);
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  auto s = rocksdb::DB::Open(rocksdb::DBOptions{opts}, dir, cfs, &handles, &db);
  if (!s.ok()) {
    auto msg = s.ToString();
    if (msg.find("lock") != std::string::npos || msg.find("LOCK") != std::string::npos)
      return fail("node.data_dir: '" + dir
                  + "' is in use by another running node (its LOCK is held)");
    return fail("node.data_dir: cannot open the database in '" + dir + "': " + msg);
  }
  return std::make_unique<rocksdb_store>(db, std::move(handles));
}

} // namespace presence::storage
