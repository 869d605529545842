#include "store/store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "test_support.h"

namespace magnetic::store {
namespace {

namespace fs = std::filesystem;

// Direct access to the SQLite file, to look at what the store wrote and to damage it.
class RawDb {
 public:
  explicit RawDb(const fs::path& path) { sqlite3_open(path.c_str(), &db_); }
  ~RawDb() { sqlite3_close(db_); }
  void exec(const std::string& sql) {
    char* err = nullptr;
    ASSERT_EQ(sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK)
        << (err ? err : "");
  }
  std::string blob(const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr);
    std::string out;
    if (sqlite3_step(st) == SQLITE_ROW) {
      auto p = static_cast<const char*>(sqlite3_column_blob(st, 0));
      out.assign(p ? p : "", sqlite3_column_bytes(st, 0));
    }
    sqlite3_finalize(st);
    return out;
  }
  int64_t integer(const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr);
    int64_t v = -1;
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
  }
  void set_blob(const std::string& sql, const std::string& value) {
    sqlite3_stmt* st = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr), SQLITE_OK);
    sqlite3_bind_blob(st, 1, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
    EXPECT_EQ(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
  }

 private:
  sqlite3* db_ = nullptr;
};

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  ::stat(p.c_str(), &st);
  return st.st_mode & 07777;
}

// Whether every character of `s` is one of `alphabet`.
bool only(std::string_view s, std::string_view alphabet) {
  return s.find_first_not_of(alphabet) == std::string_view::npos;
}
constexpr std::string_view kBase32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
constexpr std::string_view kSecretAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+";

// "2024-05-06T07:08:09Z"
bool is_rfc3339_seconds(const std::string& t) {
  if (t.size() != 20) return false;
  for (size_t i = 0; i < t.size(); ++i) {
    char want = "dddd-dd-ddTdd:dd:ddZ"[i];
    if (want == 'd' ? !std::isdigit(static_cast<unsigned char>(t[i])) : t[i] != want) return false;
  }
  return true;
}

bool file_contains(const fs::path& p, const std::string& needle) {
  if (!fs::exists(p)) return false;
  return testing::read_file(p).find(needle) != std::string::npos;
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override { reopen(); }
  void reopen() {
    store_.reset();
    auto s = Store::open(data_.string());
    ASSERT_TRUE(s.is_ok()) << s.status().message();
    store_ = std::move(s).value();
  }
  testing::TempDir dir_;
  fs::path data_ = dir_.path() / "data";
  std::unique_ptr<Store> store_;
};

// --- Opening and the master key ------------------------------------------------------------

TEST_F(StoreTest, OpenCreatesOwnerOnlyDirectoryKeyAndDatabase) {
  EXPECT_EQ(mode_of(data_), 0700u);
  EXPECT_EQ(mode_of(data_ / "master.key"), 0600u);
  EXPECT_EQ(fs::file_size(data_ / "master.key"), 32u);
  EXPECT_EQ(mode_of(data_ / "metadata.db"), 0600u);
  for (const auto& entry : fs::directory_iterator(data_)) {
    // The key is written beside its name and linked into place; nothing of that is left.
    EXPECT_EQ(entry.path().filename().string().find(".new-"), std::string::npos) << entry.path();
  }
  RawDb raw(data_ / "metadata.db");
  EXPECT_EQ(raw.integer("SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);
}

TEST_F(StoreTest, ReopenKeepsDataAndKey) {
  std::string key_before = testing::read_file(data_ / "master.key");
  auto key = store_->create_key("ops");
  ASSERT_TRUE(key.is_ok());
  reopen();
  EXPECT_EQ(testing::read_file(data_ / "master.key"), key_before);
  auto found = store_->find_key(key->access_key_id);
  ASSERT_TRUE(found.is_ok()) << found.status().message();
  EXPECT_EQ(found->secret, key->secret);
}

TEST_F(StoreTest, MasterKeyReadableByGroupIsRefused) {
  store_.reset();
  fs::path key = data_ / "master.key";
  ASSERT_EQ(::chmod(key.c_str(), 0640), 0);
  auto s = Store::open(data_.string());
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.status().message(),
            "master key '" + key.string() +
                "' is accessible by group or others (mode 0640); make it owner-only with chmod "
                "600");
}

TEST_F(StoreTest, MasterKeyReadableByOthersIsRefused) {
  store_.reset();
  fs::path key = data_ / "master.key";
  ASSERT_EQ(::chmod(key.c_str(), 0604), 0);
  auto s = Store::open(data_.string());
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.status().message(),
            "master key '" + key.string() +
                "' is accessible by group or others (mode 0604); make it owner-only with chmod "
                "600");
}

TEST_F(StoreTest, MasterKeyOfWrongSizeIsRefused) {
  testing::TempDir other;
  fs::path key = other.path() / "master.key";
  {
    std::ofstream out(key, std::ios::binary);
    out << std::string(31, 'k');
  }
  ASSERT_EQ(::chmod(key.c_str(), 0600), 0);
  auto s = Store::open(other.path().string());
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.status().message(),
            "master key '" + key.string() + "' has 31 bytes; a master key has exactly 32");
  EXPECT_FALSE(fs::exists(other.path() / "metadata.db"));  // nothing made before the key is good
}

TEST_F(StoreTest, AnotherMasterKeyIsRefused) {
  store_.reset();
  fs::path key = data_ / "master.key";
  fs::remove(key);
  {
    std::ofstream out(key, std::ios::binary);
    out << std::string(32, 'k');
  }
  ASSERT_EQ(::chmod(key.c_str(), 0600), 0);
  auto s = Store::open(data_.string());
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.status().message(),
            "master.key is not the key this metadata.db was sealed with; restore the right "
            "master.key (the secrets in metadata.db cannot be opened without it)");
}

TEST_F(StoreTest, LostMasterKeyBesideADatabaseIsNotReplaced) {
  store_.reset();
  fs::remove(data_ / "master.key");
  auto s = Store::open(data_.string());
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.status().message(),
            "master key '" + (data_ / "master.key").string() + "' is missing but '" +
                (data_ / "metadata.db").string() +
                "' exists; restore master.key (the secrets sealed in metadata.db cannot be "
                "opened without it)");
  EXPECT_FALSE(fs::exists(data_ / "master.key"));
}

TEST_F(StoreTest, DataDirectoryThatIsAFileIsRefused) {
  fs::path file = dir_.path() / "plain";
  std::ofstream(file) << "x";
  auto s = Store::open(file.string());
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.status().message(), "data directory '" + file.string() + "' is not a directory");
}

TEST_F(StoreTest, NestedDataDirectoryIsCreated) {
  fs::path nested = dir_.path() / "a" / "b" / "data";
  auto s = Store::open(nested.string() + "/");
  ASSERT_TRUE(s.is_ok()) << s.status().message();
  EXPECT_EQ(mode_of(nested), 0700u);
  EXPECT_TRUE(fs::exists(nested / "metadata.db"));
}

// --- Access keys ---------------------------------------------------------------------------

TEST_F(StoreTest, CreatedKeyHasAwsShapedIdAndSecret) {
  auto key = store_->create_key("deploy");
  ASSERT_TRUE(key.is_ok()) << key.status().message();
  ASSERT_EQ(key->access_key_id.size(), 20u);
  EXPECT_EQ(key->access_key_id.substr(0, 4), "AKIA");
  EXPECT_TRUE(only(key->access_key_id.substr(4), kBase32)) << key->access_key_id;
  EXPECT_EQ(key->secret.size(), 40u);
  EXPECT_TRUE(only(key->secret, kSecretAlphabet)) << key->secret;
  EXPECT_EQ(key->name, "deploy");
  EXPECT_TRUE(is_rfc3339_seconds(key->created_at)) << key->created_at;
  EXPECT_TRUE(key->active);
  auto other = store_->create_key("deploy");
  EXPECT_NE(other->access_key_id, key->access_key_id);
  EXPECT_NE(other->secret, key->secret);
}

TEST_F(StoreTest, FindKeyReturnsTheSecretAndListLeavesItOut) {
  auto a = store_->create_key("a");
  auto b = store_->create_key("b");
  auto found = store_->find_key(b->access_key_id);
  ASSERT_TRUE(found.is_ok());
  EXPECT_EQ(found->access_key_id, b->access_key_id);
  EXPECT_EQ(found->secret, b->secret);
  EXPECT_EQ(found->name, "b");
  EXPECT_EQ(found->created_at, b->created_at);
  EXPECT_TRUE(found->active);

  auto list = store_->list_keys();
  ASSERT_TRUE(list.is_ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].access_key_id, a->access_key_id);  // in creation order
  EXPECT_EQ((*list)[1].access_key_id, b->access_key_id);
  EXPECT_EQ((*list)[0].secret, "");
  EXPECT_EQ((*list)[1].secret, "");
  EXPECT_EQ((*list)[1].name, "b");
  EXPECT_TRUE((*list)[0].active);
}

TEST_F(StoreTest, RevokedKeyIsNotFoundAndListedInactive) {
  auto a = store_->create_key("a");
  auto b = store_->create_key("b");
  ASSERT_TRUE(store_->revoke_key(a->access_key_id).is_ok());
  auto found = store_->find_key(a->access_key_id);
  ASSERT_FALSE(found.is_ok());
  EXPECT_EQ(found.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(found.status().message(),
            "Access key '" + a->access_key_id + "' does not exist or is revoked");
  EXPECT_TRUE(store_->find_key(b->access_key_id).is_ok());
  auto list = store_->list_keys();
  EXPECT_FALSE((*list)[0].active);
  EXPECT_TRUE((*list)[1].active);
  EXPECT_TRUE(store_->revoke_key(a->access_key_id).is_ok());  // again: still revoked, ok
}

TEST_F(StoreTest, UnknownKeyIsNotFound) {
  Status s = store_->revoke_key("AKIAAAAAAAAAAAAAAAAA");
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "Access key 'AKIAAAAAAAAAAAAAAAAA' does not exist");
  auto f = store_->find_key("AKIAAAAAAAAAAAAAAAAA");
  EXPECT_EQ(f.status().code(), StatusCode::kNotFound);
  // Ids are exact: a key is not found by its id in lower case.
  auto key = store_->create_key("");
  std::string lower = key->access_key_id;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  EXPECT_EQ(store_->find_key(lower).status().code(), StatusCode::kNotFound);
}

// --- Sealing -------------------------------------------------------------------------------

TEST_F(StoreTest, SecretsAreNowhereInTheFilesInTheClear) {
  auto key = store_->create_key("sealed");
  const std::string pem =
      "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIPlainTextThatMustNotBeStored\n"
      "-----END PRIVATE KEY-----\n";
  Identity id;
  id.name = "example.com";
  id.dkim_private_key_pem = pem;
  ASSERT_TRUE(store_->create_identity(id).is_ok());

  // While open, the rows may sit in the WAL; after close they are in the main file.
  for (const char* file : {"metadata.db", "metadata.db-wal"}) {
    EXPECT_FALSE(file_contains(data_ / file, key->secret)) << file;
    EXPECT_FALSE(file_contains(data_ / file, "PlainTextThatMustNotBeStored")) << file;
  }
  EXPECT_TRUE(file_contains(data_ / "metadata.db", key->access_key_id) ||
              file_contains(data_ / "metadata.db-wal", key->access_key_id));
  store_.reset();
  EXPECT_FALSE(file_contains(data_ / "metadata.db", key->secret));
  EXPECT_FALSE(file_contains(data_ / "metadata.db", "PlainTextThatMustNotBeStored"));
  EXPECT_TRUE(file_contains(data_ / "metadata.db", key->access_key_id));  // the grep works

  RawDb raw(data_ / "metadata.db");
  std::string sealed = raw.blob("SELECT secret FROM access_key");
  EXPECT_EQ(sealed.size(), 1u + 12u + 40u + 16u);  // version, nonce, ciphertext, tag
}

TEST_F(StoreTest, SameSecretSealsDifferentlyEachTime) {
  Identity a, b;
  a.name = "a.example";
  b.name = "b.example";
  a.dkim_private_key_pem = b.dkim_private_key_pem = "the same key";
  ASSERT_TRUE(store_->create_identity(a).is_ok());
  ASSERT_TRUE(store_->create_identity(b).is_ok());
  RawDb raw(data_ / "metadata.db");
  EXPECT_NE(raw.blob("SELECT dkim_private_key FROM identity WHERE name = 'a.example'"),
            raw.blob("SELECT dkim_private_key FROM identity WHERE name = 'b.example'"));
}

TEST_F(StoreTest, TamperedCiphertextByteMakesFindKeyFailCleanly) {
  auto key = store_->create_key("t");
  {
    RawDb raw(data_ / "metadata.db");
    std::string sealed = raw.blob("SELECT secret FROM access_key");
    sealed[20] ^= 0x01;  // a byte of the ciphertext
    raw.set_blob("UPDATE access_key SET secret = ?", sealed);
  }
  auto found = store_->find_key(key->access_key_id);
  ASSERT_FALSE(found.is_ok());
  EXPECT_EQ(found.status().code(), StatusCode::kInternal);
  EXPECT_EQ(found.status().message(),
            "the secret of access key '" + key->access_key_id +
                "' cannot be opened: sealed value does not open: damaged, moved from another "
                "row, or under another master key");
}

TEST_F(StoreTest, TruncatedSealedValueFailsCleanly) {
  auto key = store_->create_key("t");
  {
    RawDb raw(data_ / "metadata.db");
    raw.set_blob("UPDATE access_key SET secret = ?", std::string("\x01short", 6));
  }
  auto found = store_->find_key(key->access_key_id);
  EXPECT_EQ(found.status().code(), StatusCode::kInternal);
  EXPECT_EQ(found.status().message(), "the secret of access key '" + key->access_key_id +
                                          "' cannot be opened: sealed value is malformed");
}

TEST_F(StoreTest, SealedValueMovedToAnotherRowDoesNotOpen) {
  auto a = store_->create_key("a");
  auto b = store_->create_key("b");
  {
    RawDb raw(data_ / "metadata.db");
    std::string sealed_a =
        raw.blob("SELECT secret FROM access_key WHERE id = '" + a->access_key_id + "'");
    raw.set_blob("UPDATE access_key SET secret = ? WHERE id = '" + b->access_key_id + "'",
                 sealed_a);
  }
  EXPECT_TRUE(store_->find_key(a->access_key_id).is_ok());
  EXPECT_EQ(store_->find_key(b->access_key_id).status().code(), StatusCode::kInternal);
}

TEST_F(StoreTest, TamperedIdentityKeyFailsGetButNotList) {
  Identity id;
  id.name = "example.com";
  id.dkim_private_key_pem = "pem";
  ASSERT_TRUE(store_->create_identity(id).is_ok());
  {
    RawDb raw(data_ / "metadata.db");
    std::string sealed = raw.blob("SELECT dkim_private_key FROM identity");
    sealed.back() ^= 0x80;  // a byte of the tag
    raw.set_blob("UPDATE identity SET dkim_private_key = ?", sealed);
  }
  auto got = store_->get_identity("example.com");
  EXPECT_EQ(got.status().code(), StatusCode::kInternal);
  EXPECT_EQ(got.status().message(),
            "the DKIM private key of identity 'example.com' cannot be opened: sealed value does "
            "not open: damaged, moved from another row, or under another master key");
  EXPECT_EQ(store_->list_identities({})->items.size(), 1u);
}

// --- Templates -----------------------------------------------------------------------------

TEST_F(StoreTest, TemplateCrud) {
  EmailTemplate t{"welcome", "Hi {{name}}", "Hello", "<p>Hello</p>", "", ""};
  ASSERT_TRUE(store_->create_template(t).is_ok());
  Status dup = store_->create_template(t);
  EXPECT_EQ(dup.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(dup.message(), "Template 'welcome' already exists");

  auto got = store_->get_template("welcome");
  ASSERT_TRUE(got.is_ok());
  EXPECT_EQ(got->subject, "Hi {{name}}");
  EXPECT_EQ(got->text, "Hello");
  EXPECT_EQ(got->html, "<p>Hello</p>");
  EXPECT_FALSE(got->created_at.empty());
  EXPECT_EQ(got->updated_at, got->created_at);

  EmailTemplate changed{"welcome", "New", "", "<p>New</p>", "", "2030-01-02T03:04:05Z"};
  ASSERT_TRUE(store_->update_template(changed).is_ok());
  got = store_->get_template("welcome");
  EXPECT_EQ(got->subject, "New");
  EXPECT_EQ(got->text, "");
  EXPECT_EQ(got->updated_at, "2030-01-02T03:04:05Z");
  EXPECT_NE(got->created_at, "2030-01-02T03:04:05Z");  // kept

  // Names are exact.
  EXPECT_EQ(store_->get_template("Welcome").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->delete_template("welcome").is_ok());
  auto gone = store_->get_template("welcome");
  EXPECT_EQ(gone.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(gone.status().message(), "Template 'welcome' does not exist");
  Status del = store_->delete_template("welcome");
  EXPECT_EQ(del.code(), StatusCode::kNotFound);
  EXPECT_EQ(del.message(), "Template 'welcome' does not exist");
  Status upd = store_->update_template(changed);
  EXPECT_EQ(upd.code(), StatusCode::kNotFound);
  EXPECT_EQ(upd.message(), "Template 'welcome' does not exist");
}

TEST_F(StoreTest, TemplateWithEmptyNameIsRefused) {
  Status s = store_->create_template({});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "Template name is empty");
}

TEST_F(StoreTest, TemplatesPageAcrossPagesInNameOrder) {
  // Created out of order; listed by name (byte order: upper case before lower case).
  std::vector<std::string> names;
  for (int i = 24; i >= 0; --i) {
    char name[16];
    std::snprintf(name, sizeof name, "t%02d", i);
    names.push_back(name);
    ASSERT_TRUE(store_->create_template({name, "s", "t", "", "", ""}).is_ok());
  }
  ASSERT_TRUE(store_->create_template({"Z", "s", "t", "", "", ""}).is_ok());
  std::vector<std::string> seen;
  Page page{"", 10};
  std::vector<size_t> sizes;
  do {
    auto l = store_->list_templates(page);
    ASSERT_TRUE(l.is_ok()) << l.status().message();
    sizes.push_back(l->items.size());
    for (auto& t : l->items) seen.push_back(t.name);
    page.token = l->next_token;
  } while (!page.token.empty());
  EXPECT_EQ(sizes, (std::vector<size_t>{10, 10, 6}));
  ASSERT_EQ(seen.size(), 26u);
  EXPECT_EQ(seen[0], "Z");
  EXPECT_EQ(seen[1], "t00");
  EXPECT_EQ(seen[25], "t24");
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
}

TEST_F(StoreTest, ExactlyOneFullPageHasNoNextToken) {
  for (const char* n : {"a", "b", "c"}) ASSERT_TRUE(store_->create_template({n}).is_ok());
  auto l = store_->list_templates({"", 3});
  EXPECT_EQ(l->items.size(), 3u);
  EXPECT_EQ(l->next_token, "");
  auto empty = store_->list_configuration_sets({});
  EXPECT_EQ(empty->items.size(), 0u);
  EXPECT_EQ(empty->next_token, "");
}

TEST_F(StoreTest, PageSizeOutOfRangeIsRefused) {
  for (size_t size : {size_t{0}, size_t{1001}}) {
    auto l = store_->list_templates({"", size});
    ASSERT_FALSE(l.is_ok());
    EXPECT_EQ(l.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(l.status().message(),
              "PageSize " + std::to_string(size) + " is out of range: it must be from 1 to 1000");
  }
  EXPECT_TRUE(store_->list_templates({"", 1000}).is_ok());
  EXPECT_TRUE(store_->list_suppressed({}, 0, 0, {"", 1000}).is_ok());
  EXPECT_EQ(store_->list_suppressed({}, 0, 0, {"", 1001}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(StoreTest, BadOrForeignTokenIsRefused) {
  for (const char* n : {"a", "b", "c"}) {
    ASSERT_TRUE(store_->create_template({n}).is_ok());
    ASSERT_TRUE(store_->create_configuration_set({n}).is_ok());
  }
  auto l = store_->list_templates({"", 1});
  ASSERT_FALSE(l->next_token.empty());
  auto foreign = store_->list_configuration_sets({l->next_token, 1});
  ASSERT_FALSE(foreign.is_ok());
  EXPECT_EQ(foreign.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(foreign.status().message(),
            "NextToken '" + l->next_token + "' is not a token of this listing");
  for (const char* bad : {"!!!!", "abc", "YQ==\n", " dGVtcGxhdGU6YQ=="}) {
    auto r = store_->list_templates({bad, 1});
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(store_->list_suppressed({}, 0, 0, {l->next_token, 1}).status().code(),
            StatusCode::kInvalidArgument);
}

// --- Identities ----------------------------------------------------------------------------

Identity domain_identity(const std::string& name) {
  Identity id;
  id.name = name;
  id.dkim_origin = "AWS_SES";
  id.dkim_selector = "s1";
  id.dkim_private_key_pem = "-----BEGIN PRIVATE KEY-----\nkey of " + name + "\n";
  id.dkim_key_length = "ED25519";
  id.configuration_set = "default";
  return id;
}

TEST_F(StoreTest, IdentityCrudWithoutAsciiCase) {
  ASSERT_TRUE(store_->create_identity(domain_identity("Example.COM")).is_ok());
  Status dup = store_->create_identity(domain_identity("example.com"));
  EXPECT_EQ(dup.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(dup.message(), "Identity 'example.com' already exists");

  auto got = store_->get_identity("EXAMPLE.com");
  ASSERT_TRUE(got.is_ok()) << got.status().message();
  EXPECT_EQ(got->name, "Example.COM");  // as created
  EXPECT_TRUE(got->is_domain);
  EXPECT_EQ(got->dkim_origin, "AWS_SES");
  EXPECT_EQ(got->dkim_selector, "s1");
  EXPECT_EQ(got->dkim_private_key_pem, "-----BEGIN PRIVATE KEY-----\nkey of Example.COM\n");
  EXPECT_EQ(got->dkim_key_length, "ED25519");
  EXPECT_TRUE(got->dkim_signing_enabled);
  EXPECT_EQ(got->configuration_set, "default");
  EXPECT_FALSE(got->created_at.empty());

  Identity changed = *got;
  changed.name = "example.com";
  changed.dkim_origin = "EXTERNAL";
  changed.dkim_private_key_pem = "other pem";
  changed.dkim_signing_enabled = false;
  changed.configuration_set = "";
  ASSERT_TRUE(store_->update_identity(changed).is_ok());
  got = store_->get_identity("example.com");
  EXPECT_EQ(got->name, "Example.COM");
  EXPECT_EQ(got->dkim_origin, "EXTERNAL");
  EXPECT_EQ(got->dkim_private_key_pem, "other pem");
  EXPECT_FALSE(got->dkim_signing_enabled);
  EXPECT_EQ(got->configuration_set, "");

  // No private key at all.
  changed.dkim_private_key_pem = "";
  ASSERT_TRUE(store_->update_identity(changed).is_ok());
  EXPECT_EQ(store_->get_identity("example.com")->dkim_private_key_pem, "");

  ASSERT_TRUE(store_->delete_identity("EXAMPLE.COM").is_ok());
  auto gone = store_->get_identity("Example.COM");
  EXPECT_EQ(gone.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(gone.status().message(), "Identity 'Example.COM' does not exist");
  EXPECT_EQ(store_->delete_identity("example.com").code(), StatusCode::kNotFound);
  Status upd = store_->update_identity(changed);
  EXPECT_EQ(upd.code(), StatusCode::kNotFound);
  EXPECT_EQ(upd.message(), "Identity 'example.com' does not exist");
}

TEST_F(StoreTest, EmailIdentityIsFoundWithoutCaseToo) {
  Identity id;
  id.name = "Someone@Example.com";
  id.is_domain = false;
  ASSERT_TRUE(store_->create_identity(id).is_ok());
  auto got = store_->get_identity("someone@example.COM");
  ASSERT_TRUE(got.is_ok());
  EXPECT_FALSE(got->is_domain);
  EXPECT_EQ(got->dkim_private_key_pem, "");
}

TEST_F(StoreTest, IdentitiesPageWithoutCaseAndWithoutKeys) {
  for (const char* n : {"b.example", "C.example", "a.example", "D.example", "e.example"}) {
    ASSERT_TRUE(store_->create_identity(domain_identity(n)).is_ok());
  }
  std::vector<std::string> seen;
  Page page{"", 2};
  do {
    auto l = store_->list_identities(page);
    ASSERT_TRUE(l.is_ok()) << l.status().message();
    for (auto& i : l->items) {
      seen.push_back(i.name);
      EXPECT_EQ(i.dkim_private_key_pem, "");
      EXPECT_EQ(i.dkim_selector, "s1");
    }
    page.token = l->next_token;
  } while (!page.token.empty());
  EXPECT_EQ(seen, (std::vector<std::string>{"a.example", "b.example", "C.example", "D.example",
                                            "e.example"}));
}

// --- Configuration sets --------------------------------------------------------------------

TEST_F(StoreTest, ConfigurationSetCrudWithExactNames) {
  ConfigurationSet set{"Marketing",
                       R"({"SendingPoolName":"pool1"})",
                       R"({"ReputationMetricsEnabled":true})",
                       R"({"SendingEnabled":true})",
                       R"({"SuppressedReasons":["BOUNCE"]})",
                       R"({"CustomRedirectDomain":"t.example.com"})",
                       R"([{"Key":"team","Value":"growth"}])",
                       ""};
  ASSERT_TRUE(store_->create_configuration_set(set).is_ok());
  Status dup = store_->create_configuration_set(set);
  EXPECT_EQ(dup.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(dup.message(), "Configuration set 'Marketing' already exists");
  // Another case is another set.
  ASSERT_TRUE(store_->create_configuration_set({"marketing"}).is_ok());

  auto got = store_->get_configuration_set("Marketing");
  ASSERT_TRUE(got.is_ok());
  EXPECT_EQ(got->delivery_options, R"({"SendingPoolName":"pool1"})");
  EXPECT_EQ(got->reputation_options, R"({"ReputationMetricsEnabled":true})");
  EXPECT_EQ(got->sending_options, R"({"SendingEnabled":true})");
  EXPECT_EQ(got->suppression_options, R"({"SuppressedReasons":["BOUNCE"]})");
  EXPECT_EQ(got->tracking_options, R"({"CustomRedirectDomain":"t.example.com"})");
  EXPECT_EQ(got->tags, R"([{"Key":"team","Value":"growth"}])");
  EXPECT_FALSE(got->created_at.empty());
  EXPECT_EQ(store_->get_configuration_set("marketing")->delivery_options, "");

  ConfigurationSet changed = *got;
  changed.tracking_options = "";
  changed.tags = "[]";
  ASSERT_TRUE(store_->update_configuration_set(changed).is_ok());
  got = store_->get_configuration_set("Marketing");
  EXPECT_EQ(got->tracking_options, "");
  EXPECT_EQ(got->tags, "[]");
  EXPECT_EQ(got->delivery_options, R"({"SendingPoolName":"pool1"})");

  auto l = store_->list_configuration_sets({});
  ASSERT_EQ(l->items.size(), 2u);
  EXPECT_EQ(l->items[0].name, "Marketing");
  EXPECT_EQ(l->items[1].name, "marketing");

  ASSERT_TRUE(store_->delete_configuration_set("Marketing").is_ok());
  auto gone = store_->get_configuration_set("Marketing");
  EXPECT_EQ(gone.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(gone.status().message(), "Configuration set 'Marketing' does not exist");
  EXPECT_EQ(store_->delete_configuration_set("Marketing").code(), StatusCode::kNotFound);
  Status upd = store_->update_configuration_set(changed);
  EXPECT_EQ(upd.code(), StatusCode::kNotFound);
  EXPECT_EQ(upd.message(), "Configuration set 'Marketing' does not exist");
  EXPECT_EQ(store_->create_configuration_set({}).message(), "Configuration set name is empty");
}

TEST_F(StoreTest, ConfigurationSetsPageAcrossPages) {
  for (int i = 0; i < 7; ++i) {
    ASSERT_TRUE(store_->create_configuration_set({"cs" + std::to_string(i)}).is_ok());
  }
  auto p1 = store_->list_configuration_sets({"", 3});
  auto p2 = store_->list_configuration_sets({p1->next_token, 3});
  auto p3 = store_->list_configuration_sets({p2->next_token, 3});
  EXPECT_EQ(p1->items.front().name, "cs0");
  EXPECT_EQ(p2->items.front().name, "cs3");
  ASSERT_EQ(p3->items.size(), 1u);
  EXPECT_EQ(p3->items[0].name, "cs6");
  EXPECT_EQ(p3->next_token, "");
}

// --- Account -------------------------------------------------------------------------------

TEST_F(StoreTest, AccountHasDefaultsUntilWritten) {
  auto a = store_->account();
  ASSERT_TRUE(a.is_ok());
  EXPECT_EQ(a->max_24_hour_send, 50000);
  EXPECT_EQ(a->max_send_rate, 1000);
  EXPECT_TRUE(a->sending_enabled);
  EXPECT_EQ(a->suppressed_reasons, (std::vector<std::string>{"BOUNCE", "COMPLAINT"}));
  EXPECT_FALSE(a->ses_compatible_escaping);
  EXPECT_EQ(a->enforcement_status, "HEALTHY");
  EXPECT_EQ(a->sending_paused_reason, "");
  EXPECT_EQ(a->reputation_reset_ms, 0);
}

TEST_F(StoreTest, AccountIsWrittenAndKeptAcrossReopen) {
  Account a;
  a.max_24_hour_send = 200;
  a.max_send_rate = 2.5;
  a.sending_enabled = false;
  a.suppressed_reasons = {"COMPLAINT"};
  a.ses_compatible_escaping = true;
  a.enforcement_status = "SHUTDOWN";
  a.sending_paused_reason = "bounce rate 12.5% over 2000 messages";
  a.reputation_reset_ms = 1700000000123;
  ASSERT_TRUE(store_->put_account(a).is_ok());
  reopen();
  auto got = store_->account();
  ASSERT_TRUE(got.is_ok());
  EXPECT_EQ(got->max_24_hour_send, 200);
  EXPECT_EQ(got->max_send_rate, 2.5);
  EXPECT_FALSE(got->sending_enabled);
  EXPECT_EQ(got->suppressed_reasons, (std::vector<std::string>{"COMPLAINT"}));
  EXPECT_TRUE(got->ses_compatible_escaping);
  EXPECT_EQ(got->enforcement_status, "SHUTDOWN");
  EXPECT_EQ(got->sending_paused_reason, "bounce rate 12.5% over 2000 messages");
  EXPECT_EQ(got->reputation_reset_ms, 1700000000123);
  a.suppressed_reasons = {};
  ASSERT_TRUE(store_->put_account(a).is_ok());
  EXPECT_TRUE(store_->account()->suppressed_reasons.empty());
}

TEST_F(StoreTest, AccountFieldMissingFromTheRowKeepsItsDefault) {
  {
    RawDb raw(data_ / "metadata.db");
    raw.exec(R"(INSERT INTO account (id, settings) VALUES (1, '{"MaxSendRate": 7}'))");
  }
  auto a = store_->account();
  ASSERT_TRUE(a.is_ok()) << a.status().message();
  EXPECT_EQ(a->max_send_rate, 7);
  EXPECT_EQ(a->max_24_hour_send, 50000);
}

TEST_F(StoreTest, BadAccountIsRefused) {
  Account a;
  a.suppressed_reasons = {"BOUNCE", "SPAM"};
  Status s = store_->put_account(a);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "SuppressedReasons: 'SPAM' is not BOUNCE or COMPLAINT");
  a.suppressed_reasons = {"BOUNCE", "BOUNCE"};
  EXPECT_EQ(store_->put_account(a).message(), "SuppressedReasons: 'BOUNCE' is listed twice");
  a = Account{};
  a.max_send_rate = -1;
  EXPECT_EQ(store_->put_account(a).message(), "MaxSendRate must be a number of at least 0");
  a = Account{};
  a.enforcement_status = "healthy";
  EXPECT_EQ(store_->put_account(a).message(),
            "EnforcementStatus 'healthy' is not HEALTHY, PROBATION or SHUTDOWN");
  a = Account{};
  a.reputation_reset_ms = -1;
  EXPECT_EQ(store_->put_account(a).message(), "ReputationResetMs -1 is before 1970");
  a = Account{};
  a.max_24_hour_send = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(store_->put_account(a).message(), "Max24HourSend must be a number of at least 0");
  EXPECT_EQ(store_->account()->max_send_rate, 1000);  // nothing written
}

// --- Suppression list ----------------------------------------------------------------------

TEST_F(StoreTest, SuppressionPutGetReplaceDeleteWithoutCase) {
  ASSERT_TRUE(
      store_->put_suppressed({"Ann@X.example", "BOUNCE", 1000, "<m1@example.com>", "fb1"}).is_ok());
  auto got = store_->get_suppressed("ann@x.EXAMPLE");
  ASSERT_TRUE(got.is_ok());
  EXPECT_EQ(got->email, "Ann@X.example");
  EXPECT_EQ(got->reason, "BOUNCE");
  EXPECT_EQ(got->last_update_ms, 1000);
  EXPECT_EQ(got->message_id, "<m1@example.com>");
  EXPECT_EQ(got->feedback_id, "fb1");

  // The same address in another case replaces the entry.
  ASSERT_TRUE(store_->put_suppressed({"ann@x.example", "COMPLAINT", 2000, "", ""}).is_ok());
  got = store_->get_suppressed("ANN@X.EXAMPLE");
  EXPECT_EQ(got->email, "ann@x.example");
  EXPECT_EQ(got->reason, "COMPLAINT");
  EXPECT_EQ(got->last_update_ms, 2000);
  EXPECT_EQ(got->message_id, "");
  EXPECT_EQ(store_->list_suppressed({}, 0, 0, {})->items.size(), 1u);

  ASSERT_TRUE(store_->delete_suppressed("Ann@x.example").is_ok());
  auto gone = store_->get_suppressed("ann@x.example");
  EXPECT_EQ(gone.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(gone.status().message(),
            "Email address 'ann@x.example' is not on the suppression list");
  Status del = store_->delete_suppressed("ann@x.example");
  EXPECT_EQ(del.code(), StatusCode::kNotFound);
  EXPECT_EQ(del.message(), "Email address 'ann@x.example' is not on the suppression list");
}

TEST_F(StoreTest, NonAsciiLettersAreComparedExactly) {
  // ASCII case folding only: "É" and "é" are different bytes and stay different.
  ASSERT_TRUE(store_->put_suppressed({"\xC3\x89lise@x.example", "BOUNCE", 1, "", ""}).is_ok());
  EXPECT_EQ(store_->get_suppressed("\xC3\xA9lise@x.example").status().code(),
            StatusCode::kNotFound);
  EXPECT_TRUE(store_->get_suppressed("\xC3\x89LISE@X.EXAMPLE").is_ok());
}

TEST_F(StoreTest, BadSuppressionIsRefused) {
  Status s = store_->put_suppressed({"a@x.example", "SPAM", 1, "", ""});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "Reason 'SPAM' is not BOUNCE or COMPLAINT");
  EXPECT_EQ(store_->put_suppressed({"", "BOUNCE", 1, "", ""}).message(), "EmailAddress is empty");
  EXPECT_EQ(store_->put_suppressed({"a@x.example", "BOUNCE", -5, "", ""}).message(),
            "LastUpdateTime -5 is before 1970");
  auto l = store_->list_suppressed({"bounce"}, 0, 0, {});
  EXPECT_EQ(l.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(l.status().message(), "Reasons: 'bounce' is not BOUNCE or COMPLAINT");
  l = store_->list_suppressed({}, 20, 10, {});
  EXPECT_EQ(l.status().message(), "StartDate (20) is after EndDate (10)");
}

TEST_F(StoreTest, SuppressionWithoutTimeIsStampedNow) {
  ASSERT_TRUE(store_->put_suppressed({"a@x.example", "BOUNCE", 0, "", ""}).is_ok());
  EXPECT_GT(store_->get_suppressed("a@x.example")->last_update_ms, 1600000000000);
}

TEST_F(StoreTest, SuppressionListFiltersByReasonAndTime) {
  ASSERT_TRUE(store_->put_suppressed({"a@x.example", "BOUNCE", 100, "", ""}).is_ok());
  ASSERT_TRUE(store_->put_suppressed({"b@x.example", "COMPLAINT", 200, "", ""}).is_ok());
  ASSERT_TRUE(store_->put_suppressed({"c@x.example", "BOUNCE", 300, "", ""}).is_ok());
  ASSERT_TRUE(store_->put_suppressed({"d@x.example", "COMPLAINT", 400, "", ""}).is_ok());
  auto emails = [&](const std::vector<std::string>& reasons, int64_t start, int64_t end) {
    std::vector<std::string> out;
    auto l = store_->list_suppressed(reasons, start, end, {});
    EXPECT_TRUE(l.is_ok()) << l.status().message();
    if (l) {
      for (auto& d : l->items) out.push_back(d.email);
    }
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(emails({}, 0, 0), (V{"d@x.example", "c@x.example", "b@x.example", "a@x.example"}));
  EXPECT_EQ(emails({"BOUNCE"}, 0, 0), (V{"c@x.example", "a@x.example"}));
  EXPECT_EQ(emails({"COMPLAINT"}, 0, 0), (V{"d@x.example", "b@x.example"}));
  EXPECT_EQ(emails({"BOUNCE", "COMPLAINT"}, 0, 0).size(), 4u);
  EXPECT_EQ(emails({}, 200, 300), (V{"c@x.example", "b@x.example"}));  // both ends included
  EXPECT_EQ(emails({}, 250, 0), (V{"d@x.example", "c@x.example"}));
  EXPECT_EQ(emails({}, 0, 250), (V{"b@x.example", "a@x.example"}));
  EXPECT_EQ(emails({"BOUNCE"}, 150, 350), (V{"c@x.example"}));
}

TEST_F(StoreTest, SuppressionPagesAcrossPagesWithTiesInTime) {
  // 12 addresses, three per millisecond: pages of 5 must still see each exactly once.
  std::vector<std::string> want;
  for (int ms = 4; ms >= 1; --ms) {
    for (const char* local : {"Zed", "mid", "ALF"}) {
      std::string email = std::string(local) + std::to_string(ms) + "@x.example";
      ASSERT_TRUE(store_->put_suppressed({email, "BOUNCE", ms, "", ""}).is_ok());
      want.push_back(email);  // newest first, then by address descending without case
    }
  }
  std::vector<std::string> seen;
  std::vector<size_t> sizes;
  Page page{"", 5};
  do {
    auto l = store_->list_suppressed({}, 0, 0, page);
    ASSERT_TRUE(l.is_ok()) << l.status().message();
    sizes.push_back(l->items.size());
    for (auto& d : l->items) seen.push_back(d.email);
    page.token = l->next_token;
  } while (!page.token.empty());
  EXPECT_EQ(sizes, (std::vector<size_t>{5, 5, 2}));
  EXPECT_EQ(seen, want);
}

TEST_F(StoreTest, SuppressionPagingWithAFilterKeepsTheFilter) {
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(store_
                    ->put_suppressed({"u" + std::to_string(i) + "@x.example",
                                      i % 2 ? "COMPLAINT" : "BOUNCE", 10 + i, "", ""})
                    .is_ok());
  }
  auto p1 = store_->list_suppressed({"BOUNCE"}, 0, 0, {"", 2});
  ASSERT_EQ(p1->items.size(), 2u);
  EXPECT_EQ(p1->items[0].email, "u4@x.example");
  EXPECT_EQ(p1->items[1].email, "u2@x.example");
  auto p2 = store_->list_suppressed({"BOUNCE"}, 0, 0, {p1->next_token, 2});
  ASSERT_EQ(p2->items.size(), 1u);
  EXPECT_EQ(p2->items[0].email, "u0@x.example");
  EXPECT_EQ(p2->next_token, "");
}

TEST_F(StoreTest, AreSuppressedAnswersABulkSendInOrder) {
  ASSERT_TRUE(store_->put_suppressed({"bounced@x.example", "BOUNCE", 1, "", ""}).is_ok());
  ASSERT_TRUE(store_->put_suppressed({"Complained@Y.example", "COMPLAINT", 1, "", ""}).is_ok());
  std::vector<std::string> emails;
  std::vector<bool> want;
  for (int i = 0; i < 50; ++i) {
    if (i == 7) {
      emails.push_back("BOUNCED@x.example");
      want.push_back(true);
    } else if (i == 33) {
      emails.push_back("complained@y.EXAMPLE");
      want.push_back(true);
    } else {
      emails.push_back("r" + std::to_string(i) + "@x.example");
      want.push_back(false);
    }
  }
  emails.push_back("bounced@x.example");  // the same address twice answers twice
  want.push_back(true);
  auto got = store_->are_suppressed(emails);
  ASSERT_TRUE(got.is_ok()) << got.status().message();
  EXPECT_EQ(*got, want);
  EXPECT_EQ(store_->are_suppressed({})->size(), 0u);
  // The statement is reused: a second batch answers from a clean start.
  EXPECT_EQ(*store_->are_suppressed({"r1@x.example", "bounced@x.example"}),
            (std::vector<bool>{false, true}));
}

// --- Event destinations --------------------------------------------------------------------

EventDestination webhook(const std::string& set, const std::string& name) {
  EventDestination d;
  d.configuration_set = set;
  d.name = name;
  d.enabled = true;
  d.matching_event_types = {"BOUNCE", "COMPLAINT"};
  d.kind = EventDestination::Kind::kWebhook;
  d.target = "https://hooks.example.com/ses";
  d.definition_json = R"({"SnsDestination":{"TopicArn":"https://hooks.example.com/ses"}})";
  return d;
}

TEST_F(StoreTest, EventDestinationCrud) {
  ASSERT_TRUE(store_->create_configuration_set({"cs"}).is_ok());
  EXPECT_EQ(*store_->event_destinations_version(), 0u);
  ASSERT_TRUE(store_->create_event_destination(webhook("cs", "hooks")).is_ok());
  EXPECT_EQ(*store_->event_destinations_version(), 1u);

  auto l = store_->list_event_destinations("cs");
  ASSERT_TRUE(l.is_ok()) << l.status().message();
  ASSERT_EQ(l->size(), 1u);
  const EventDestination& got = (*l)[0];
  EXPECT_EQ(got.configuration_set, "cs");
  EXPECT_EQ(got.name, "hooks");
  EXPECT_TRUE(got.enabled);
  EXPECT_EQ(got.matching_event_types, (std::vector<std::string>{"BOUNCE", "COMPLAINT"}));
  EXPECT_EQ(got.kind, EventDestination::Kind::kWebhook);
  EXPECT_EQ(got.target, "https://hooks.example.com/ses");
  EXPECT_EQ(got.definition_json,
            R"({"SnsDestination":{"TopicArn":"https://hooks.example.com/ses"}})");

  Status dup = store_->create_event_destination(webhook("cs", "hooks"));
  EXPECT_EQ(dup.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(dup.message(), "Event destination 'hooks' already exists in configuration set 'cs'");
  EXPECT_EQ(*store_->event_destinations_version(), 1u);  // a refused change is no change

  EventDestination file = webhook("cs", "hooks");
  file.enabled = false;
  file.matching_event_types = {"DELIVERY"};
  file.kind = EventDestination::Kind::kFile;
  file.target = "events-1";
  file.definition_json = "{}";
  ASSERT_TRUE(store_->update_event_destination(file).is_ok());
  EXPECT_EQ(*store_->event_destinations_version(), 2u);
  reopen();
  l = store_->list_event_destinations("cs");
  ASSERT_EQ(l->size(), 1u);
  EXPECT_FALSE((*l)[0].enabled);
  EXPECT_EQ((*l)[0].matching_event_types, (std::vector<std::string>{"DELIVERY"}));
  EXPECT_EQ((*l)[0].kind, EventDestination::Kind::kFile);
  EXPECT_EQ((*l)[0].target, "events-1");
  EXPECT_EQ((*l)[0].definition_json, "{}");
  EXPECT_EQ(*store_->event_destinations_version(), 2u);  // kept in the file

  ASSERT_TRUE(store_->delete_event_destination("cs", "hooks").is_ok());
  EXPECT_EQ(*store_->event_destinations_version(), 3u);
  EXPECT_TRUE(store_->list_event_destinations("cs")->empty());
  Status again = store_->delete_event_destination("cs", "hooks");
  EXPECT_EQ(again.code(), StatusCode::kNotFound);
  EXPECT_EQ(again.message(), "Event destination 'hooks' does not exist in configuration set 'cs'");
  Status upd = store_->update_event_destination(file);
  EXPECT_EQ(upd.code(), StatusCode::kNotFound);
  EXPECT_EQ(upd.message(), "Event destination 'hooks' does not exist in configuration set 'cs'");
}

TEST_F(StoreTest, EventDestinationOfAnUnknownSetIsNotFoundNamingTheSet) {
  ASSERT_TRUE(store_->create_configuration_set({"CS"}).is_ok());
  for (Status s : {store_->create_event_destination(webhook("cs", "a")),
                   store_->update_event_destination(webhook("cs", "a")),
                   store_->delete_event_destination("cs", "a"),
                   store_->list_event_destinations("cs").status()}) {
    EXPECT_EQ(s.code(), StatusCode::kNotFound);
    EXPECT_EQ(s.message(), "Configuration set 'cs' does not exist");  // names are exact
  }
  EXPECT_EQ(*store_->event_destinations_version(), 0u);
}

TEST_F(StoreTest, EventDestinationsAreListedByNameAndBySet) {
  for (const char* set : {"b-set", "a-set", "empty"}) {
    ASSERT_TRUE(store_->create_configuration_set({set}).is_ok());
  }
  for (const char* name : {"zeta", "Alpha", "alpha", "mid"}) {
    ASSERT_TRUE(store_->create_event_destination(webhook("b-set", name)).is_ok());
  }
  ASSERT_TRUE(store_->create_event_destination(webhook("a-set", "only")).is_ok());

  auto names = [](const std::vector<EventDestination>& list) {
    std::vector<std::string> out;
    for (const auto& d : list) out.push_back(d.configuration_set + "/" + d.name);
    return out;
  };
  EXPECT_EQ(names(*store_->list_event_destinations("b-set")),
            (std::vector<std::string>{"b-set/Alpha", "b-set/alpha", "b-set/mid", "b-set/zeta"}));
  EXPECT_TRUE(store_->list_event_destinations("empty")->empty());
  EXPECT_EQ(names(*store_->list_event_destinations_all()),
            (std::vector<std::string>{"a-set/only", "b-set/Alpha", "b-set/alpha", "b-set/mid",
                                      "b-set/zeta"}));
}

TEST_F(StoreTest, DeletingAConfigurationSetDeletesItsEventDestinations) {
  ASSERT_TRUE(store_->create_configuration_set({"gone"}).is_ok());
  ASSERT_TRUE(store_->create_configuration_set({"kept"}).is_ok());
  ASSERT_TRUE(store_->create_event_destination(webhook("gone", "a")).is_ok());
  ASSERT_TRUE(store_->create_event_destination(webhook("gone", "b")).is_ok());
  ASSERT_TRUE(store_->create_event_destination(webhook("kept", "a")).is_ok());
  uint64_t before = *store_->event_destinations_version();

  ASSERT_TRUE(store_->delete_configuration_set("gone").is_ok());
  EXPECT_GT(*store_->event_destinations_version(), before);
  auto all = store_->list_event_destinations_all();
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].configuration_set, "kept");
  RawDb raw(data_ / "metadata.db");
  EXPECT_EQ(raw.integer("SELECT COUNT(*) FROM event_destination WHERE configuration_set = 'gone'"),
            0);

  // A new set of the old name starts with none.
  ASSERT_TRUE(store_->create_configuration_set({"gone"}).is_ok());
  EXPECT_TRUE(store_->list_event_destinations("gone")->empty());
  ASSERT_TRUE(store_->create_event_destination(webhook("gone", "a")).is_ok());
}

TEST_F(StoreTest, BadEventDestinationIsRefused) {
  ASSERT_TRUE(store_->create_configuration_set({"cs"}).is_ok());
  EventDestination d = webhook("cs", "");
  Status s = store_->create_event_destination(d);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "Event destination name is empty");
  d = webhook("", "x");
  EXPECT_EQ(store_->create_event_destination(d).message(), "Configuration set name is empty");
  d = webhook("cs", "x");
  d.matching_event_types = {};
  EXPECT_EQ(store_->create_event_destination(d).message(),
            "Event destination 'x' has no matching event types");
  d.matching_event_types = {"BOUNCE", "bounce"};
  EXPECT_EQ(store_->update_event_destination(d).message(),
            "Event destination 'x': 'bounce' is not an SES event type");
  d = webhook("cs", "x");
  d.target = "";
  EXPECT_EQ(store_->create_event_destination(d).message(), "Event destination 'x' has no target");
  EXPECT_TRUE(store_->list_event_destinations("cs")->empty());
}

TEST_F(StoreTest, EveryEventTypeNameIsAccepted) {
  ASSERT_TRUE(store_->create_configuration_set({"cs"}).is_ok());
  EventDestination d = webhook("cs", "all");
  d.matching_event_types = event_type_names();
  ASSERT_EQ(d.matching_event_types.size(), 11u);  // SES's ten and SENDING_PAUSED
  ASSERT_TRUE(store_->create_event_destination(d).is_ok());
  EXPECT_EQ((*store_->list_event_destinations("cs"))[0].matching_event_types, event_type_names());
  EXPECT_TRUE(is_event_type("DELIVERY_DELAY"));
  EXPECT_TRUE(is_event_type("SENDING_PAUSED"));
  EXPECT_FALSE(is_event_type("Delivery"));
}

TEST_F(StoreTest, DamagedEventDestinationRowFailsCleanly) {
  ASSERT_TRUE(store_->create_configuration_set({"cs"}).is_ok());
  ASSERT_TRUE(store_->create_event_destination(webhook("cs", "a")).is_ok());
  {
    RawDb raw(data_ / "metadata.db");
    raw.exec("UPDATE event_destination SET kind = 'pigeon'");
  }
  auto l = store_->list_event_destinations("cs");
  EXPECT_EQ(l.status().code(), StatusCode::kInternal);
  EXPECT_EQ(l.status().message(), "store: event destination 'a' has unknown kind 'pigeon'");
  {
    RawDb raw(data_ / "metadata.db");
    raw.exec("UPDATE event_destination SET kind = 'file', matching_event_types = '{'");
  }
  EXPECT_EQ(store_->list_event_destinations_all().status().message(),
            "store: the event types of event destination 'a' are damaged");
}

// --- Sending quota -------------------------------------------------------------------------

constexpr int64_t kMinute = 60 * 1000;
constexpr int64_t kDay = 24 * 60 * kMinute;
constexpr int64_t kT0 = 1700000000000 / kMinute * kMinute;  // the start of a minute

TEST_F(StoreTest, QuotaSumsTheLast1440Minutes) {
  EXPECT_EQ(*store_->sent_last_24_hours(kT0), 0u);
  ASSERT_TRUE(store_->record_sent(kT0, 10).is_ok());
  ASSERT_TRUE(store_->record_sent(kT0 + 59999, 5).is_ok());  // same minute
  ASSERT_TRUE(store_->record_sent(kT0 + kMinute, 1).is_ok());
  ASSERT_TRUE(store_->record_sent(kT0 + 2 * kMinute, 0).is_ok());
  EXPECT_EQ(*store_->sent_last_24_hours(kT0 + kMinute), 16u);
  EXPECT_EQ(*store_->sent_last_24_hours(kT0), 15u);  // a later minute is not yet counted
  // The minute of kT0 is the oldest of the window until a day has passed since its start.
  EXPECT_EQ(*store_->sent_last_24_hours(kT0 + kDay - 1), 16u);
  EXPECT_EQ(*store_->sent_last_24_hours(kT0 + kDay), 1u);
  EXPECT_EQ(*store_->sent_last_24_hours(kT0 + kDay + kMinute), 0u);
}

TEST_F(StoreTest, QuotaPrunesMinutesOlderThanADay) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(store_->record_sent(kT0 + i * kMinute, 1).is_ok());
  ASSERT_TRUE(store_->record_sent(kT0 + kDay + 2 * kMinute, 7).is_ok());
  EXPECT_EQ(*store_->sent_last_24_hours(kT0 + kDay + 2 * kMinute), 2u + 7u);
  RawDb raw(data_ / "metadata.db");
  EXPECT_EQ(raw.integer("SELECT COUNT(*) FROM sent_minute"), 3);  // minutes 3, 4 and the new one
  EXPECT_EQ(raw.integer("SELECT MIN(minute) FROM sent_minute"), kT0 / kMinute + 3);
}

TEST_F(StoreTest, QuotaIsKeptAcrossReopen) {
  ASSERT_TRUE(store_->record_sent(kT0, 42).is_ok());
  reopen();
  EXPECT_EQ(*store_->sent_last_24_hours(kT0 + 1), 42u);
}

TEST_F(StoreTest, QuotaRefusesTimesBefore1970) {
  Status s = store_->record_sent(-1, 1);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "record_sent: time -1 is before 1970");
  EXPECT_EQ(store_->sent_last_24_hours(-1).status().code(), StatusCode::kInvalidArgument);
}

// --- Reputation counters -------------------------------------------------------------------

TEST_F(StoreTest, ReputationSumsPerScopeFromSince) {
  ASSERT_TRUE(store_->record_reputation("", kT0, 100, 2, 1).is_ok());
  ASSERT_TRUE(store_->record_reputation("", kT0 + 30000, 50, 1, 0).is_ok());  // same minute
  ASSERT_TRUE(store_->record_reputation("", kT0 + kMinute, 10, 0, 3).is_ok());
  ASSERT_TRUE(store_->record_reputation("cs", kT0, 7, 7, 7).is_ok());
  ASSERT_TRUE(store_->record_reputation("cs", kT0 + kMinute, 0, 0, 0).is_ok());  // nothing

  auto all = store_->reputation_since("", kT0, kT0 + kMinute);
  ASSERT_TRUE(all.is_ok());
  EXPECT_EQ(all->sent, 160u);
  EXPECT_EQ(all->bounced, 3u);
  EXPECT_EQ(all->complained, 4u);
  // A later minute is not counted before its time.
  auto first = store_->reputation_since("", kT0, kT0 + 59999);
  EXPECT_EQ(first->sent, 150u);
  // since inside a minute leaves that minute out: nothing from before a reset is counted.
  auto after = store_->reputation_since("", kT0 + 1, kT0 + kMinute);
  EXPECT_EQ(after->sent, 10u);
  EXPECT_EQ(after->bounced, 0u);
  EXPECT_EQ(after->complained, 3u);
  auto cs = store_->reputation_since("cs", 0, kT0 + kDay);
  EXPECT_EQ(cs->sent, 7u);
  EXPECT_EQ(cs->bounced, 7u);
  EXPECT_EQ(cs->complained, 7u);
  EXPECT_EQ(store_->reputation_since("other", 0, kT0 + kDay)->sent, 0u);
  // since after now sums nothing.
  EXPECT_EQ(store_->reputation_since("", kT0 + kMinute, kT0)->sent, 0u);
  reopen();
  EXPECT_EQ(store_->reputation_since("", kT0, kT0 + kMinute)->sent, 160u);
}

TEST_F(StoreTest, ReputationPrunesBucketsOlderThan30Days) {
  constexpr int64_t k30Days = 30 * kDay;
  ASSERT_TRUE(store_->record_reputation("", kT0, 1, 0, 0).is_ok());
  ASSERT_TRUE(store_->record_reputation("cs", kT0 + kMinute, 1, 0, 0).is_ok());
  ASSERT_TRUE(store_->record_reputation("", kT0 + k30Days, 5, 0, 0).is_ok());
  RawDb raw(data_ / "metadata.db");
  // The minute of kT0 is exactly 30 days old: deleted; the next one is kept, in any scope.
  EXPECT_EQ(raw.integer("SELECT COUNT(*) FROM reputation_minute"), 2);
  EXPECT_EQ(raw.integer("SELECT MIN(minute) FROM reputation_minute"), kT0 / kMinute + 1);
  EXPECT_EQ(store_->reputation_since("", 0, kT0 + k30Days)->sent, 5u);
  EXPECT_EQ(store_->reputation_since("cs", 0, kT0 + k30Days)->sent, 1u);
}

TEST_F(StoreTest, DeletingAConfigurationSetDeletesItsReputation) {
  ASSERT_TRUE(store_->create_configuration_set({"cs"}).is_ok());
  ASSERT_TRUE(store_->record_reputation("cs", kT0, 10, 5, 0).is_ok());
  ASSERT_TRUE(store_->record_reputation("", kT0, 10, 5, 0).is_ok());
  ASSERT_TRUE(store_->delete_configuration_set("cs").is_ok());
  EXPECT_EQ(store_->reputation_since("cs", 0, kT0)->sent, 0u);
  EXPECT_EQ(store_->reputation_since("", 0, kT0)->sent, 10u);
}

TEST_F(StoreTest, ReputationRefusesBadTimesAndCounts) {
  Status s = store_->record_reputation("", -1, 1, 0, 0);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "record_reputation: time -1 is before 1970");
  s = store_->record_reputation("", kT0, 0, uint64_t{1} << 63, 0);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "record_reputation: a count is too large");
  auto r = store_->reputation_since("", -5, kT0);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "reputation_since: time -5 is before 1970");
  EXPECT_EQ(store_->reputation_since("", 0, -2).status().message(),
            "reputation_since: time -2 is before 1970");
}

// --- Soft bounces --------------------------------------------------------------------------

TEST_F(StoreTest, SoftBounceRunsCountUpAndResetWithoutCase) {
  EXPECT_EQ(*store_->count_soft_bounce("Ann@X.example", kT0), 1);
  EXPECT_EQ(*store_->count_soft_bounce("ann@x.example", kT0 + 1), 2);
  EXPECT_EQ(*store_->count_soft_bounce("bob@x.example", kT0 + 2), 1);
  reopen();
  EXPECT_EQ(*store_->count_soft_bounce("ANN@x.example", kT0 + 3), 3);
  ASSERT_TRUE(store_->reset_soft_bounces("ann@X.EXAMPLE").is_ok());
  EXPECT_EQ(*store_->count_soft_bounce("ann@x.example", kT0 + 4), 1);
  EXPECT_EQ(*store_->count_soft_bounce("bob@x.example", kT0 + 5), 2);
  // Ending a run that is not there is fine (every delivery ends one).
  EXPECT_TRUE(store_->reset_soft_bounces("nobody@x.example").is_ok());
}

TEST_F(StoreTest, SoftBounceRunOlderThan30DaysStartsAgain) {
  constexpr int64_t k30Days = 30 * kDay;
  EXPECT_EQ(*store_->count_soft_bounce("a@x.example", kT0), 1);
  EXPECT_EQ(*store_->count_soft_bounce("a@x.example", kT0 + k30Days), 2);  // just within
  EXPECT_EQ(*store_->count_soft_bounce("b@x.example", kT0), 1);
  EXPECT_EQ(*store_->count_soft_bounce("a@x.example", kT0 + 2 * k30Days + 1), 1);
  // b's run was pruned when the day turned.
  RawDb raw(data_ / "metadata.db");
  EXPECT_EQ(raw.integer("SELECT COUNT(*) FROM soft_bounce"), 1);
}

TEST_F(StoreTest, SoftBounceRefusesBadInput) {
  auto r = store_->count_soft_bounce("", kT0);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "count_soft_bounce: the address is empty");
  EXPECT_EQ(store_->count_soft_bounce("a@x.example", -1).status().message(),
            "count_soft_bounce: time -1 is before 1970");
  EXPECT_EQ(store_->reset_soft_bounces("").message(), "reset_soft_bounces: the address is empty");
}

// --- Threads -------------------------------------------------------------------------------

TEST_F(StoreTest, ConcurrentUseFromThreads) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([this, t] {
      for (int i = 0; i < 25; ++i) {
        std::string n = std::to_string(t) + "-" + std::to_string(i);
        EXPECT_TRUE(store_->create_key(n).is_ok());
        EXPECT_TRUE(store_->put_suppressed({n + "@x.example", "BOUNCE", i + 1, "", ""}).is_ok());
        EXPECT_TRUE(store_->record_sent(kT0 + i, 1).is_ok());
        EXPECT_TRUE(store_->are_suppressed({n + "@x.example"})->at(0));
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(store_->list_keys()->size(), 100u);
  EXPECT_EQ(*store_->sent_last_24_hours(kT0 + 100), 100u);
  EXPECT_EQ(store_->list_suppressed({}, 0, 0, {"", 1000})->items.size(), 100u);
}

}  // namespace
}  // namespace magnetic::store
