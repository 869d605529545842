#include "campaign/composer.h"

#include <gtest/gtest.h>

#include "campaign/template_set.h"

namespace magnetic::campaign {
namespace {

std::shared_ptr<const TemplateSet> templates(const nlohmann::json& doc) {
  auto t = TemplateSet::from_json(doc, "t.json");
  EXPECT_TRUE(t.is_ok()) << t.status().message();
  return std::make_shared<const TemplateSet>(std::move(*t));
}

ComposerOptions options(std::string unsubscribe = "") {
  ComposerOptions o;
  o.from = *mail::parse_mailbox("News <news@example.com>");
  o.unsubscribe_url = std::move(unsubscribe);
  return o;
}

TEST(TemplateSet, SesShapeAndCreateEmailTemplateRequest) {
  auto a = TemplateSet::from_json({{"Subject", "s"}, {"Text", "t"}}, "a.json");
  ASSERT_TRUE(a.is_ok());
  EXPECT_TRUE(a->has_text());
  EXPECT_FALSE(a->has_html());
  auto b = TemplateSet::from_json(
      {{"TemplateName", "welcome"}, {"TemplateContent", {{"Subject", "s"}, {"Html", "<p>h</p>"}}}},
      "b.json");
  ASSERT_TRUE(b.is_ok());
  EXPECT_EQ(b->name(), "welcome");
  EXPECT_TRUE(b->has_html());
}

TEST(TemplateSet, MissingPartsAndBadTypesAreNamed) {
  EXPECT_EQ(TemplateSet::from_json({{"Text", "t"}}, "a.json").status().message(),
            "template 'a.json': Subject is missing");
  EXPECT_EQ(TemplateSet::from_json({{"Subject", "s"}}, "a.json").status().message(),
            "template 'a.json': needs Text or Html (or both)");
  EXPECT_EQ(TemplateSet::from_json({{"Subject", 3}, {"Text", "t"}}, "a.json").status().message(),
            "template 'a.json': Subject must be a string");
  EXPECT_EQ(TemplateSet::from_json(nlohmann::json::array(), "a.json").status().message(),
            "template 'a.json' must be a JSON object");
}

TEST(TemplateSet, SyntaxErrorNamesPartLineAndColumn) {
  auto t = TemplateSet::from_json({{"Subject", "s"}, {"Html", "<p>\n  {{#if x}}open"}}, "a.json");
  ASSERT_FALSE(t.is_ok());
  EXPECT_EQ(t.status().message().rfind("template 'a.json': html: line 2, column 3: ", 0), 0u)
      << t.status().message();
}

TEST(TemplateSet, MissingVariablesAgainstColumns) {
  auto t = templates(
      {{"Subject", "Hi {{name}}"}, {"Text", "{{address.city}} {{address.zip}}\n{{frist}}"}});
  auto missing = t->missing_variables({"email", "name", "address.city"});
  EXPECT_EQ(missing, (std::vector<std::string>{"text, line 1, column 20: 'address.zip'",
                                               "text, line 2, column 3: 'frist'"}));
  EXPECT_TRUE(t->missing_variables({"name", "address.city", "address.zip", "frist"}).empty());
}

TEST(Composer, VerpSenderUnsubscribeFieldsAndPersonalization) {
  Composer c(templates({{"Subject", "Hi {{name}}"}, {"Text", "Dear {{name}}\n"}}),
             options("https://example.com/u/{token}"));
  nlohmann::json data = {{"name", "Zoë"}};
  std::string message;
  auto sender = c.compose({"a@b.example", "tok123", "<m1@example.com>", &data}, message);
  ASSERT_TRUE(sender.is_ok()) << sender.status().message();
  EXPECT_EQ(*sender, "bounce+tok123@example.com");
  EXPECT_NE(message.find("\r\nList-Unsubscribe: <https://example.com/u/tok123>,\r\n"
                         " <mailto:unsubscribe+tok123@example.com?subject=unsubscribe>\r\n"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"),
            std::string::npos);
  EXPECT_NE(message.find("\r\nSubject: Hi =?UTF-8?Q?Zo=C3=AB?=\r\n"), std::string::npos) << message;
  EXPECT_NE(message.find("\r\nMessage-ID: <m1@example.com>\r\n"), std::string::npos);
  EXPECT_NE(message.find("\r\nTo: a@b.example\r\n"), std::string::npos);
}

TEST(Composer, UnsubscribeUrlWithoutPlaceholderGetsAQueryParameter) {
  Composer plain(templates({{"Subject", "s"}, {"Text", "t"}}), options("https://example.com/u"));
  EXPECT_EQ(plain.unsubscribe_link("abc"), "https://example.com/u?token=abc");
  Composer query(templates({{"Subject", "s"}, {"Text", "t"}}),
                 options("https://example.com/u?list=7"));
  EXPECT_EQ(query.unsubscribe_link("abc"), "https://example.com/u?list=7&token=abc");
}

TEST(Composer, StrictRenderingFailsTheRecipientNamingTheVariable) {
  Composer c(templates({{"Subject", "Hi {{name}}"}, {"Text", "x"}}), options());
  nlohmann::json data = nlohmann::json::object();
  std::string message;
  auto sender = c.compose({"a@b.example", "t", "<m@example.com>", &data}, message);
  ASSERT_FALSE(sender.is_ok());
  EXPECT_EQ(sender.status().message().rfind("rendering failed: ", 0), 0u);
  EXPECT_NE(sender.status().message().find("name"), std::string::npos) << sender.status().message();
}

TEST(Composer, crlf_in_data_cannot_add_a_header) {
  Composer c(templates({{"Subject", "Hi {{name}}"}, {"Text", "x"}}), options());
  nlohmann::json data = {{"name", "Evil\r\nBcc: victim@example.com"}};
  std::string message;
  ASSERT_TRUE(c.compose({"a@b.example", "t", "<m@example.com>", &data}, message).is_ok());
  std::string head = message.substr(0, message.find("\r\n\r\n"));
  EXPECT_EQ(head.find("\r\nBcc:"), std::string::npos) << head;
  EXPECT_NE(head.find("\r\nSubject: Hi Evil Bcc: victim@example.com\r\n"), std::string::npos)
      << head;
}

TEST(Composer, SignedMessageStartsWithTheSignature) {
  auto key = dkim::DkimKey::generate(dkim::Algorithm::kEd25519Sha256);
  ASSERT_TRUE(key.is_ok());
  dkim::SignerOptions so;
  so.domain = "example.com";
  so.selector = "s1";
  auto signer = dkim::DkimSigner::create(so, *key);
  ASSERT_TRUE(signer.is_ok());
  ComposerOptions o = options();
  o.signer = std::move(*signer);
  Composer c(templates({{"Subject", "s"}, {"Text", "t"}}), std::move(o));
  std::string message;
  ASSERT_TRUE(c.compose({"a@b.example", "t", "<m@example.com>", nullptr}, message).is_ok());
  EXPECT_EQ(
      message.rfind("DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; d=example.com;", 0),
      0u)
      << message.substr(0, 200);
}

}  // namespace
}  // namespace magnetic::campaign
