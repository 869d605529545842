#include "campaign/recipient_reader.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "test_support.h"

namespace magnetic::campaign {
namespace {

using nlohmann::json;

// A stand-in for mail::parse_address: exactly one '@', both parts non-empty, domain lower-cased.
Result<std::string> simple_check(std::string_view address) {
  size_t at = address.find('@');
  if (at == std::string_view::npos || address.find('@', at + 1) != std::string_view::npos) {
    return Status::invalid("expected exactly one '@'");
  }
  if (at == 0) return Status::invalid("empty local part");
  if (at + 1 == address.size()) return Status::invalid("empty domain");
  std::string out(address.substr(0, at + 1));
  for (char c : address.substr(at + 1)) {
    out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return out;
}

// simple_check, but refusing one given address.
AddressCheck refusing(std::string bad) {
  return [bad](std::string_view address) -> Result<std::string> {
    if (address == bad) return Status::invalid("refused by the test");
    return simple_check(address);
  };
}

class RecipientReaderTest : public ::testing::Test {
 protected:
  std::string write(const std::string& name, std::string_view bytes) {
    std::filesystem::path p = dir_.path() / name;
    std::ofstream out(p, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return p.string();
  }

  std::unique_ptr<RecipientReader> open(const std::string& name, std::string_view bytes,
                                        AddressCheck check = simple_check) {
    auto reader = RecipientReader::open(write(name, bytes), std::move(check));
    if (!reader.is_ok()) {
      ADD_FAILURE() << "open failed: " << reader.status().message();
      return nullptr;
    }
    return std::move(reader).value();
  }

  static std::vector<RecipientRow> drain(RecipientReader& reader) {
    std::vector<RecipientRow> rows;
    RecipientRow row;
    while (reader.next(row)) rows.push_back(row);
    return rows;
  }

  std::vector<RecipientRow> rows(const std::string& name, std::string_view bytes,
                                 AddressCheck check = simple_check) {
    auto reader = open(name, bytes, std::move(check));
    if (!reader) return {};
    return drain(*reader);
  }

  std::vector<RecipientRow> csv(std::string_view bytes, AddressCheck check = simple_check) {
    return rows("list.csv", bytes, std::move(check));
  }

  std::vector<RecipientRow> jsonl(std::string_view bytes, AddressCheck check = simple_check) {
    return rows("list.jsonl", bytes, std::move(check));
  }

  // The message open() fails with (empty when it succeeds).
  std::string open_error(const std::string& name, std::string_view bytes) {
    auto reader = RecipientReader::open(write(name, bytes), simple_check);
    return reader.is_ok() ? std::string() : reader.status().message();
  }

  magnetic::testing::TempDir dir_;
};

// ------------------------------------------------------------------------------------------
// CSV: well-formed lists

TEST_F(RecipientReaderTest, csv_rows_with_email_domain_and_data) {
  auto reader = open("list.csv",
                     "email,name,zip\n"
                     "Ana@Example.COM,Ana,01234\n"
                     "bob@example.org,\"Bob, Jr.\",99\n");
  ASSERT_NE(reader, nullptr);
  EXPECT_EQ(reader->columns(), (std::vector<std::string>{"email", "name", "zip"}));
  auto got = drain(*reader);
  ASSERT_EQ(got.size(), 2u);

  EXPECT_EQ(got[0].row, 1u);
  EXPECT_EQ(got[0].line, 2u);
  EXPECT_EQ(got[0].email, "Ana@example.com");
  EXPECT_EQ(got[0].domain, "example.com");
  EXPECT_EQ(got[0].error, "");
  EXPECT_EQ(got[0].data, json::parse(R"({"email":"Ana@Example.COM","name":"Ana","zip":"01234"})"));

  EXPECT_EQ(got[1].row, 2u);
  EXPECT_EQ(got[1].line, 3u);
  EXPECT_EQ(got[1].email, "bob@example.org");
  EXPECT_EQ(got[1].domain, "example.org");
  EXPECT_EQ(got[1].data,
            json::parse(R"({"email":"bob@example.org","name":"Bob, Jr.","zip":"99"})"));
}

TEST_F(RecipientReaderTest, doubled_quotes_and_empty_quoted_field) {
  auto got =
      csv("email,quote,empty,tail\n"
          "a@example.com,\"say \"\"hi\"\", then go\",\"\",\"\"\"\"\n");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].error, "");
  EXPECT_EQ(got[0].data["quote"], "say \"hi\", then go");
  EXPECT_EQ(got[0].data["empty"], "");
  EXPECT_EQ(got[0].data["tail"], "\"");
}

TEST_F(RecipientReaderTest, bom_before_header) {
  auto reader = open("list.csv",
                     "\xEF\xBB\xBF"
                     "email,name\na@example.com,Ann\n");
  ASSERT_NE(reader, nullptr);
  EXPECT_EQ(reader->columns(), (std::vector<std::string>{"email", "name"}));
  auto got = drain(*reader);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].error, "");
  EXPECT_EQ(got[0].email, "a@example.com");
  EXPECT_EQ(got[0].line, 2u);
}

TEST_F(RecipientReaderTest, bom_only_at_file_start) {
  // The same bytes in a value are data (U+FEFF is valid UTF-8), not skipped.
  auto got = csv("email,name\na@example.com,\xEF\xBB\xBFX\n");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].data["name"], "\xEF\xBB\xBFX");
}

TEST_F(RecipientReaderTest, quoted_newline_in_field_keeps_row_count) {
  auto got =
      csv("email,note\n"
          "a@example.com,\"line one\nline two\n\"\n"
          "b@example.com,plain\n");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].row, 1u);
  EXPECT_EQ(got[0].line, 2u);
  EXPECT_EQ(got[0].data["note"], "line one\nline two\n");
  EXPECT_EQ(got[1].row, 2u);
  EXPECT_EQ(got[1].line, 5u);
  EXPECT_EQ(got[1].data["note"], "plain");
}

TEST_F(RecipientReaderTest, crlf_inside_quotes) {
  auto got =
      csv("email,note\r\n"
          "a@example.com,\"x\r\ny\rz\"\r\n"
          "b@example.com,w\r\n");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].data["note"], "x\r\ny\rz");  // line breaks inside quotes kept as written
  EXPECT_EQ(got[0].line, 2u);
  EXPECT_EQ(got[1].line, 5u);  // CRLF counts once, the lone CR once
  EXPECT_EQ(got[1].data["note"], "w");
}

TEST_F(RecipientReaderTest, crlf_and_lone_cr_end_rows) {
  auto got = csv("email,n\r\na@example.com,1\rb@example.com,2\r\nc@example.com,3\n");
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].data["n"], "1");
  EXPECT_EQ(got[0].line, 2u);
  EXPECT_EQ(got[1].data["n"], "2");
  EXPECT_EQ(got[1].line, 3u);
  EXPECT_EQ(got[2].data["n"], "3");
  EXPECT_EQ(got[2].line, 4u);
}

TEST_F(RecipientReaderTest, final_row_without_newline) {
  auto got = csv("email,n\na@example.com,1\nb@example.com,\"2\"");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].error, "");
  EXPECT_EQ(got[1].email, "b@example.com");
  EXPECT_EQ(got[1].data["n"], "2");
  EXPECT_EQ(got[1].line, 3u);
}

TEST_F(RecipientReaderTest, trailing_empty_field_at_eof) {
  auto got = csv("email,n\na@example.com,");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].error, "");
  EXPECT_EQ(got[0].data["n"], "");
}

TEST_F(RecipientReaderTest, empty_lines_between_rows_are_not_rows) {
  auto got = csv("email,n\n\na@example.com,1\n\n\r\n\nb@example.com,2\n\n");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].row, 1u);
  EXPECT_EQ(got[0].line, 3u);
  EXPECT_EQ(got[1].row, 2u);
  EXPECT_EQ(got[1].line, 7u);
}

TEST_F(RecipientReaderTest, blank_but_not_empty_line_is_a_row) {
  auto got = csv("email,n\n  \n\"\"\na@example.com,1\n");
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].error, "row 1: expected 2 fields, found 1");
  EXPECT_EQ(got[1].error, "row 2: expected 2 fields, found 1");
  EXPECT_EQ(got[2].row, 3u);
  EXPECT_EQ(got[2].error, "");
}

TEST_F(RecipientReaderTest, dotted_columns_nest_data) {
  auto got =
      csv("email,address.city,address.zip,meta.tags.first,plan\n"
          "a@example.com,Oslo,0150,x,gold\n");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].error, "");
  EXPECT_EQ(got[0].data, json::parse(R"({"email":"a@example.com",
      "address":{"city":"Oslo","zip":"0150"},"meta":{"tags":{"first":"x"}},"plan":"gold"})"));
}

TEST_F(RecipientReaderTest, header_names_trimmed_and_email_case_insensitive) {
  auto reader = open("list.csv", "  EMAIL ,\tName \n a@Example.com\t,Ann\n");
  ASSERT_NE(reader, nullptr);
  EXPECT_EQ(reader->columns(), (std::vector<std::string>{"EMAIL", "Name"}));
  auto got = drain(*reader);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].error, "");
  EXPECT_EQ(got[0].email, "a@example.com");
  EXPECT_EQ(got[0].data, json::parse(R"({"email":"a@Example.com","Name":"Ann"})"));
}

TEST_F(RecipientReaderTest, values_stay_strings) {
  auto got = csv("email,zip,count,flag,price,empty\na@example.com,01234,42,true,1e3,\n");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].data, json::parse(R"({"email":"a@example.com","zip":"01234","count":"42",
      "flag":"true","price":"1e3","empty":""})"));
  EXPECT_TRUE(got[0].data["count"].is_string());
}

// ------------------------------------------------------------------------------------------
// CSV: the header is checked at open

TEST_F(RecipientReaderTest, conflicting_nesting_fails_open) {
  EXPECT_EQ(open_error("a.csv", "email,a,a.b\n"),
            "columns 'a' and 'a.b' conflict: 'a' cannot be both a value and an object");
  EXPECT_EQ(open_error("b.csv", "email,a.b.c,x,a.b\n"),
            "columns 'a.b' and 'a.b.c' conflict: 'a.b' cannot be both a value and an object");
  EXPECT_EQ(open_error("c.csv", "email.x,Email\n"),
            "columns 'Email' and 'email.x' conflict: 'Email' cannot be both a value and an object");
  EXPECT_EQ(open_error("c2.csv", "Email.x,email\n"), "");  // data keys "Email" and "email"
  EXPECT_EQ(open_error("d.csv", "email,a.b,a.c\n"), "");   // siblings are fine
}

TEST_F(RecipientReaderTest, duplicate_header_names_fail_open) {
  EXPECT_EQ(open_error("a.csv", "email,name,city,name\n"),
            "duplicate column 'name' (columns 2 and 4)");
  EXPECT_EQ(open_error("b.csv", "email, name ,name\n"),
            "duplicate column 'name' (columns 2 and 3)");
  EXPECT_EQ(open_error("c.csv", "Email,name,EMAIL\n"),
            "duplicate column 'EMAIL' (columns 1 and 3)");
  EXPECT_EQ(open_error("d.csv", "email,Name,name\n"), "");  // other names are case-sensitive
}

TEST_F(RecipientReaderTest, bad_headers_fail_open) {
  EXPECT_EQ(open_error("a.csv", "name,city\nAnn,Oslo\n"), "no 'email' column in the header");
  EXPECT_EQ(open_error("b.csv", ""), "empty file: no header row");
  EXPECT_EQ(open_error("c.csv", "\n\r\n"), "empty file: no header row");
  EXPECT_EQ(open_error("d.csv", "email,,x\n"), "header, column 2: empty name");
  EXPECT_EQ(open_error("e.csv", "email,a..b\n"), "column 'a..b': empty part in dotted name");
  EXPECT_EQ(open_error("f.csv", "email,.a\n"), "column '.a': empty part in dotted name");
  EXPECT_EQ(open_error("g.csv", "email,\"name\n"),
            "header, column 2: unterminated quote opened on line 1");
  EXPECT_EQ(open_error("h.csv", "email,na\"me\n"),
            "header, column 2: stray quote in unquoted field (offset 2)");
  EXPECT_EQ(open_error("i.csv", "email,n\xffme\n"),
            "header, column 2: not valid UTF-8 (byte 0xff at offset 1)");
}

TEST_F(RecipientReaderTest, open_errors) {
  std::string missing = (dir_.path() / "missing.csv").string();
  auto r = RecipientReader::open(missing, simple_check);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(r.status().message(), "cannot open '" + missing + "': No such file or directory");

  std::string txt = write("list.txt", "email\na@example.com\n");
  auto unknown = RecipientReader::open(txt, simple_check);
  ASSERT_FALSE(unknown.is_ok());
  EXPECT_EQ(unknown.status().message(),
            "'" + txt + "': unknown list format (expected .csv, .jsonl, .ndjson or .json)");

  // An explicit format needs no extension.
  auto explicit_format = RecipientReader::open(txt, ListFormat::kCsv, simple_check);
  ASSERT_TRUE(explicit_format.is_ok()) << explicit_format.status().message();
  auto got = drain(**explicit_format);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].email, "a@example.com");

  auto no_check = RecipientReader::open(txt, ListFormat::kCsv, AddressCheck());
  ASSERT_FALSE(no_check.is_ok());
  EXPECT_EQ(no_check.status().message(), "no address check given");

  EXPECT_EQ(open_error("UPPER.CSV", "email\n"), "");
  EXPECT_EQ(open_error("list.ndjson", ""), "");
  EXPECT_EQ(open_error("list.json", ""), "");
}

TEST_F(RecipientReaderTest, read_error_fails_csv_open) {
  std::filesystem::create_directory(dir_.path() / "dir.csv");
  auto r = RecipientReader::open((dir_.path() / "dir.csv").string(), simple_check);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kIoError);
  EXPECT_EQ(r.status().message(), "reading the header: Is a directory");
}

// ------------------------------------------------------------------------------------------
// CSV: bad rows are reported and the reading goes on

TEST_F(RecipientReaderTest, field_count_mismatch) {
  std::string list = "email,name,city,zip\n";
  for (int i = 1; i <= 6; ++i) list += "u" + std::to_string(i) + "@example.com,N,C,Z\n";
  list += "u7@example.com,N,C,Z,extra\n";
  list += "u8@example.com,N,C\n";
  list += "u9@example.com,N,C,Z\n";
  auto got = csv(list);
  ASSERT_EQ(got.size(), 9u);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(got[i].error, "") << i;
  EXPECT_EQ(got[6].error, "row 7: expected 4 fields, found 5");
  EXPECT_EQ(got[6].line, 8u);
  EXPECT_EQ(got[6].email, "");
  EXPECT_EQ(got[6].data, json::object());
  EXPECT_EQ(got[7].error, "row 8: expected 4 fields, found 3");
  EXPECT_EQ(got[8].error, "");
  EXPECT_EQ(got[8].row, 9u);
  EXPECT_EQ(got[8].email, "u9@example.com");
}

TEST_F(RecipientReaderTest, truncated_quote_at_eof) {
  auto got =
      csv("email,name\n"
          "a@example.com,ok\n"
          "b@example.com,\"never closed\n"
          "c@example.com,swallowed\n");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].error, "");
  EXPECT_EQ(got[1].row, 2u);
  EXPECT_EQ(got[1].line, 3u);
  EXPECT_EQ(got[1].error, "row 2, column 'name': unterminated quote opened on line 3");
  EXPECT_EQ(got[1].email, "");
}

TEST_F(RecipientReaderTest, stray_quote_in_unquoted_field) {
  auto got =
      csv("email,name,city\n"
          "a@example.com,Ann \"Nan\" Lee,Oslo\n"
          "b@example.com,Bo,Rome\n"
          "c@example.com,x,y\"\n"
          "d@example.com,Di,Bern,x\"y\n");
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0].error, "row 1, column 'name': stray quote in unquoted field (offset 4)");
  EXPECT_EQ(got[0].line, 2u);
  EXPECT_EQ(got[1].error, "");
  EXPECT_EQ(got[1].line, 3u);
  EXPECT_EQ(got[1].data["city"], "Rome");
  EXPECT_EQ(got[2].error, "row 3, column 'city': stray quote in unquoted field (offset 1)");
  EXPECT_EQ(got[2].line, 4u);
  EXPECT_EQ(got[3].error, "row 4, column 4: stray quote in unquoted field (offset 1)");
}

TEST_F(RecipientReaderTest, text_after_closing_quote) {
  auto got =
      csv("email,name,city\n"
          "a@example.com,\"Ann\"x,Oslo\n"
          "b@example.com,Bo,Rome\n");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].error, "row 1, column 'name': text after closing quote (offset 5)");
  EXPECT_EQ(got[1].error, "");
  EXPECT_EQ(got[1].row, 2u);
}

TEST_F(RecipientReaderTest, non_utf8_byte_in_field) {
  std::string list = "email,name\n";
  for (int i = 1; i <= 11; ++i) list += "u" + std::to_string(i) + "@example.com,N\n";
  list += "u12@example.com,Ann\xff\n";
  list += "u13@example.com,Ann\n";
  auto got = csv(list);
  ASSERT_EQ(got.size(), 13u);
  EXPECT_EQ(got[11].error, "row 12, column 'name': not valid UTF-8 (byte 0xff at offset 3)");
  EXPECT_EQ(got[11].line, 13u);
  EXPECT_EQ(got[12].error, "");
  EXPECT_EQ(got[12].email, "u13@example.com");
}

TEST_F(RecipientReaderTest, utf8_overlongs_surrogates_and_truncations) {
  struct Case {
    std::string value;  // as written in the CSV field
    std::string error;  // expected row error after "row N, column 'name': ", or "" when valid
  };
  const std::vector<Case> cases = {
      {"Zo\xc3\xab", ""},                             // U+00EB
      {"\xe2\x82\xac", ""},                           // U+20AC
      {"\xf0\x9f\x98\x80", ""},                       // U+1F600
      {"\xed\x9f\xbf", ""},                           // U+D7FF, just below the surrogates
      {"\xee\x80\x80", ""},                           // U+E000, just above
      {"\xef\xbf\xbf", ""},                           // U+FFFF
      {"\xf4\x8f\xbf\xbf", ""},                       // U+10FFFF, the last code point
      {"1234567\xc3\xa9", ""},                        // a sequence across the 8-byte fast path
      {"ab\xc0\xaf", "byte 0xc0 at offset 2"},        // overlong '/' in two bytes
      {"\xc1\xbf", "byte 0xc1 at offset 0"},          // overlong in two bytes
      {"x\xe0\x80\xaf", "byte 0xe0 at offset 1"},     // overlong in three bytes
      {"\xf0\x80\x80\xaf", "byte 0xf0 at offset 0"},  // overlong in four bytes
      {"\xed\xa0\x80", "byte 0xed at offset 0"},      // U+D800, high surrogate
      {"\xed\xbf\xbf", "byte 0xed at offset 0"},      // U+DFFF, low surrogate
      {"\xf4\x90\x80\x80", "byte 0xf4 at offset 0"},  // U+110000
      {"\xf5\x80\x80\x80", "byte 0xf5 at offset 0"},
      {"abc\xc3", "byte 0xc3 at offset 3"},       // truncated at the end of the value
      {"\xe2\x82x", "byte 0xe2 at offset 0"},     // truncated before an ASCII byte
      {"\x80", "byte 0x80 at offset 0"},          // lone continuation byte
      {"12345678\xfe", "byte 0xfe at offset 8"},  // after one fast-path word
      {"\"a,\xfe\"", "byte 0xfe at offset 2"},    // offset in the value, not the quoted text
  };
  std::string list = "email,name\n";
  for (const Case& c : cases) list += "a@example.com," + c.value + "\n";
  auto got = csv(list);
  ASSERT_EQ(got.size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    std::string want = cases[i].error.empty()
                           ? ""
                           : "row " + std::to_string(i + 1) + ", column 'name': not valid UTF-8 (" +
                                 cases[i].error + ")";
    EXPECT_EQ(got[i].error, want) << "case " << i;
  }
  EXPECT_EQ(got[0].data["name"], "Zo\xc3\xab");
}

TEST_F(RecipientReaderTest, invalid_and_empty_addresses) {
  auto got =
      csv("email,n\n"
          "a@example.com,1\n"
          "  \t,2\n"
          "x,3\n"
          ",4\n"
          "bad@example.com,5\n"
          "f@example.com,6\n",
          refusing("bad@example.com"));
  ASSERT_EQ(got.size(), 6u);
  EXPECT_EQ(got[0].error, "");
  EXPECT_EQ(got[1].error, "row 2: empty email");
  EXPECT_EQ(got[2].error, "row 3: invalid address 'x': expected exactly one '@'");
  EXPECT_EQ(got[2].email, "");
  EXPECT_EQ(got[2].domain, "");
  EXPECT_EQ(got[3].error, "row 4: empty email");
  EXPECT_EQ(got[4].error, "row 5: invalid address 'bad@example.com': refused by the test");
  EXPECT_EQ(got[5].error, "");
  EXPECT_EQ(got[5].email, "f@example.com");
  EXPECT_EQ(got[5].row, 6u);
}

TEST_F(RecipientReaderTest, throwing_address_check_becomes_row_error) {
  AddressCheck throws = [](std::string_view a) -> Result<std::string> {
    if (a == "boom@example.com") throw std::runtime_error("boom");
    return simple_check(a);
  };
  auto got = csv("email\nboom@example.com\nb@example.com\n", throws);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].error, "row 1: invalid address 'boom@example.com': address check failed: boom");
  EXPECT_EQ(got[1].error, "");
}

TEST_F(RecipientReaderTest, row_longer_than_limit) {
  std::string list = "email,note\n";
  list += "a@example.com," + std::string(RecipientReader::kMaxRowBytes, 'x') + "\n";
  list += "b@example.com,\"" + std::string(RecipientReader::kMaxRowBytes, '\n') + "\"\n";
  list += "c@example.com," + std::string(RecipientReader::kMaxRowBytes - 13, 'x') + "\n";
  list += "d@example.com,ok\n";
  auto got = csv(list);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0].error, "row 1: longer than 1048576 bytes");
  EXPECT_EQ(got[1].error, "row 2: longer than 1048576 bytes");
  EXPECT_EQ(got[1].line, 3u);
  EXPECT_EQ(got[2].error, "");  // exactly at the limit
  EXPECT_EQ(got[2].line, 3u + RecipientReader::kMaxRowBytes + 1);
  EXPECT_EQ(got[3].error, "");
  EXPECT_EQ(got[3].email, "d@example.com");
}

// ------------------------------------------------------------------------------------------
// CSV: chunked reading

TEST_F(RecipientReaderTest, crlf_and_doubled_quote_split_at_buffer_edge) {
  const size_t edge = RecipientReader::kReadBufferBytes;
  const std::string head = "email,note\na@example.com,";
  for (size_t at = edge - 6; at < edge + 6; ++at) {
    // The CR of the row end, a CR inside quotes, or the first quote of a doubled quote, falls at
    // byte `at`, around the end of the first read.
    const size_t pad = at - head.size();
    std::string plain = head + std::string(pad, 'x') + "\r\nb@example.com,y\r\n";
    std::string quoted = head + "\"" + std::string(pad - 1, 'x') + "\r\n\"\r\nb@example.com,y\r\n";
    std::string doubled = head + "\"" + std::string(pad - 1, 'x') + "\"\"\"\r\nb@example.com,y\r\n";

    auto p = csv(plain);
    ASSERT_EQ(p.size(), 2u) << at;
    EXPECT_EQ(p[0].data["note"], std::string(pad, 'x')) << at;
    EXPECT_EQ(p[1].line, 3u) << at;
    EXPECT_EQ(p[1].error, "") << at;

    auto q = csv(quoted);
    ASSERT_EQ(q.size(), 2u) << at;
    EXPECT_EQ(q[0].data["note"], std::string(pad - 1, 'x') + "\r\n") << at;
    EXPECT_EQ(q[1].line, 4u) << at;

    auto d = csv(doubled);
    ASSERT_EQ(d.size(), 2u) << at;
    EXPECT_EQ(d[0].data["note"], std::string(pad - 1, 'x') + "\"") << at;
    EXPECT_EQ(d[1].line, 3u) << at;
    EXPECT_EQ(d[1].error, "") << at;
  }
}

TEST_F(RecipientReaderTest, large_list_streams) {
  // 200,000 rows, every 1000th with a line break inside quotes: the count, the last row and its
  // physical line must come out exact.
  constexpr int kRows = 200'000;
  std::string list = "email,name,note\n";
  list.reserve(kRows * 48);
  for (int i = 0; i < kRows; ++i) {
    list += "user" + std::to_string(i) + "@example.com,Name " + std::to_string(i) + ",";
    list += (i % 1000 == 0) ? "\"a\nb\"\n" : "\"note, with comma\"\n";
  }
  auto reader = open("big.csv", list);
  ASSERT_NE(reader, nullptr);
  list.clear();
  list.shrink_to_fit();

  RecipientRow row;
  uint64_t count = 0;
  uint64_t errors = 0;
  while (reader->next(row)) {
    ++count;
    if (!row.error.empty()) ++errors;
  }
  EXPECT_EQ(count, static_cast<uint64_t>(kRows));
  EXPECT_EQ(errors, 0u);
  EXPECT_EQ(row.row, static_cast<uint64_t>(kRows));
  EXPECT_EQ(row.email, "user199999@example.com");
  EXPECT_EQ(row.line, 2u + 199'999u + 200u);
  EXPECT_EQ(row.data, json::parse(R"({"email":"user199999@example.com","name":"Name 199999",
      "note":"note, with comma"})"));
}

TEST_F(RecipientReaderTest, skip_honours_quotes) {
  const std::string list =
      "email,note\n"
      "a@example.com,\"one\n,two\"\n"  // row 1, lines 2-3: a quoted newline and comma
      "b@example.com,\"x\"\"\n\"\n"    // row 2, lines 4-5
      "\n"                             // line 6: empty, not a row
      "c@example.com,3\n"              // row 3, line 7
      "d@example.com,4\n"              // row 4, line 8
      "e@example.com,5";               // row 5, line 9
  auto reader = open("list.csv", list);
  ASSERT_NE(reader, nullptr);
  reader->skip(3);
  RecipientRow row;
  ASSERT_TRUE(reader->next(row));
  EXPECT_EQ(row.row, 4u);
  EXPECT_EQ(row.line, 8u);
  EXPECT_EQ(row.email, "d@example.com");
  reader->skip(1);
  EXPECT_FALSE(reader->next(row));

  auto none = open("list2.csv", list);
  ASSERT_NE(none, nullptr);
  none->skip(0);
  ASSERT_TRUE(none->next(row));
  EXPECT_EQ(row.row, 1u);
  EXPECT_EQ(row.data["note"], "one\n,two");

  auto past = open("list3.csv", list);
  ASSERT_NE(past, nullptr);
  past->skip(100);
  EXPECT_FALSE(past->next(row));
}

TEST_F(RecipientReaderTest, skip_does_not_validate) {
  auto reader = open("list.csv", "email,n\nx,1\n\xff,2,3\nc@example.com,3\n");
  ASSERT_NE(reader, nullptr);
  reader->skip(2);
  RecipientRow row;
  ASSERT_TRUE(reader->next(row));
  EXPECT_EQ(row.row, 3u);
  EXPECT_EQ(row.error, "");
  EXPECT_EQ(row.email, "c@example.com");
}

// ------------------------------------------------------------------------------------------
// JSON lines

TEST_F(RecipientReaderTest, jsonl_rows_blank_lines_and_data) {
  auto reader = open(
      "list.jsonl",
      "\xEF\xBB\xBF"
      R"({"email":"Ann@Example.COM","zip":"01234","n":7,"tags":["a"],"address":{"city":"Oslo"}})"
      "\n\n   \t\r\n"
      R"({"email":"bob@example.org"})"
      "\r\n"
      R"({"email":" c@example.net ","vip":true})");
  ASSERT_NE(reader, nullptr);
  EXPECT_TRUE(reader->columns().empty());
  auto got = drain(*reader);
  ASSERT_EQ(got.size(), 3u);

  EXPECT_EQ(got[0].row, 1u);
  EXPECT_EQ(got[0].line, 1u);
  EXPECT_EQ(got[0].error, "");
  EXPECT_EQ(got[0].email, "Ann@example.com");
  EXPECT_EQ(got[0].domain, "example.com");
  EXPECT_EQ(got[0].data, json::parse(R"({"email":"Ann@Example.COM","zip":"01234","n":7,
      "tags":["a"],"address":{"city":"Oslo"}})"));

  EXPECT_EQ(got[1].row, 2u);
  EXPECT_EQ(got[1].line, 4u);
  EXPECT_EQ(got[1].email, "bob@example.org");

  EXPECT_EQ(got[2].row, 3u);
  EXPECT_EQ(got[2].line, 5u);
  EXPECT_EQ(got[2].email, "c@example.net");
  EXPECT_EQ(got[2].data["vip"], true);
}

TEST_F(RecipientReaderTest, jsonl_bad_rows_are_reported_and_reading_goes_on) {
  auto got = jsonl(R"({"email":"a@example.com"})"
                   "\nnot json\n"
                   R"(["a@example.com"])"
                   "\n"
                   R"({"name":"x"})"
                   "\n"
                   R"({"email":42})"
                   "\n"
                   R"({"email":" "})"
                   "\n"
                   R"({"email":"x"})"
                   "\n"
                   R"({"email":"h@example.com"} trailing)"
                   "\n"
                   R"({"email":"ok@example.com"})"
                   "\n");
  ASSERT_EQ(got.size(), 9u);
  EXPECT_EQ(got[0].error, "");
  EXPECT_EQ(got[1].error,
            "row 2: not valid JSON: parse error at line 1, column 2: syntax error while parsing "
            "value - invalid literal; last read: 'no'");
  EXPECT_EQ(got[2].error, "row 3: not a JSON object");
  EXPECT_EQ(got[3].error, "row 4: no \"email\" member");
  EXPECT_EQ(got[4].error, "row 5: \"email\" is not a string");
  EXPECT_EQ(got[5].error, "row 6: empty email");
  EXPECT_EQ(got[6].error, "row 7: invalid address 'x': expected exactly one '@'");
  EXPECT_EQ(got[6].data, json::object());
  EXPECT_EQ(got[7].error,
            "row 8: not valid JSON: parse error at line 1, column 29: syntax error while parsing "
            "value - invalid literal; last read: '\"h@example.com\"} tra'; expected end of input");
  EXPECT_EQ(got[8].error, "");
  EXPECT_EQ(got[8].row, 9u);
  EXPECT_EQ(got[8].line, 9u);
  EXPECT_EQ(got[8].email, "ok@example.com");
}

TEST_F(RecipientReaderTest, jsonl_invalid_utf8_rejected) {
  // nlohmann's parser must refuse every ill-formed sequence inside a string; the reader names
  // the byte and its offset in the line.
  const std::string prefix = R"({"email":"a@example.com","name":")";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"\xff", "0xff"},         {"\xc0\xaf", "0xc0"},         {"\xe0\x80\xaf", "0xe0"},
      {"\xed\xa0\x80", "0xed"}, {"\xf4\x90\x80\x80", "0xf4"}, {"\xc3", "0xc3"},
      {"\x80", "0x80"},
  };
  std::string list;
  for (const auto& [bytes, _] : cases) list += prefix + bytes + "\"}\n";
  list += prefix + "Zo\xc3\xab\"}\n";
  auto got = jsonl(list);
  ASSERT_EQ(got.size(), cases.size() + 1);
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(got[i].error, "row " + std::to_string(i + 1) + ": not valid UTF-8 (byte " +
                                cases[i].second + " at offset " + std::to_string(prefix.size()) +
                                ")")
        << "case " << i;
  }
  EXPECT_EQ(got.back().error, "");
  EXPECT_EQ(got.back().data["name"], "Zo\xc3\xab");
}

TEST_F(RecipientReaderTest, jsonl_lone_surrogate_escape_rejected) {
  auto got = jsonl(R"({"email":"a@example.com","name":"\ud800"})"
                   "\n"
                   R"({"email":"b@example.com","name":"\ud83d\ude00"})"
                   "\n");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].error,
            "row 1: not valid JSON: parse error at line 1, column 40: syntax error while parsing "
            "value - invalid string: surrogate U+D800..U+DBFF must be followed by U+DC00..U+DFFF; "
            "last read: '\"\\ud800\"'");
  EXPECT_EQ(got[1].error, "");
  EXPECT_EQ(got[1].data["name"], "\xf0\x9f\x98\x80");
}

TEST_F(RecipientReaderTest, jsonl_line_longer_than_limit) {
  std::string list = R"({"email":"a@example.com","pad":")" +
                     std::string(RecipientReader::kMaxRowBytes, 'x') + "\"}\n" +
                     R"({"email":"b@example.com"})" + "\n";
  auto got = jsonl(list);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].error, "row 1: longer than 1048576 bytes");
  EXPECT_EQ(got[1].error, "");
  EXPECT_EQ(got[1].line, 2u);
}

TEST_F(RecipientReaderTest, jsonl_skip_counts_rows_not_blank_lines) {
  auto reader = open("list.jsonl",
                     "{\"email\":\"a@example.com\"}\n\n \n"
                     "not even json\n"
                     "{\"email\":\"c@example.com\"}\n\n"
                     "{\"email\":\"d@example.com\"}\n");
  ASSERT_NE(reader, nullptr);
  reader->skip(3);
  RecipientRow row;
  ASSERT_TRUE(reader->next(row));
  EXPECT_EQ(row.row, 4u);
  EXPECT_EQ(row.line, 7u);
  EXPECT_EQ(row.email, "d@example.com");
  EXPECT_FALSE(reader->next(row));
}

TEST_F(RecipientReaderTest, jsonl_read_error_is_a_row_then_the_end) {
  std::filesystem::create_directory(dir_.path() / "dir.jsonl");
  auto reader = RecipientReader::open((dir_.path() / "dir.jsonl").string(), simple_check);
  ASSERT_TRUE(reader.is_ok()) << reader.status().message();
  RecipientRow row;
  ASSERT_TRUE((*reader)->next(row));
  EXPECT_EQ(row.row, 1u);
  EXPECT_EQ(row.line, 1u);
  EXPECT_EQ(row.error, "row 1: read error: Is a directory");
  EXPECT_FALSE((*reader)->next(row));
}

}  // namespace
}  // namespace magnetic::campaign
