// Template operations through the HTTP server, signed.
#include <gtest/gtest.h>

#include "test_server.h"

namespace magnetic::api::testing {
namespace {

using nlohmann::json;

json welcome() {
  return {{"TemplateName", "welcome"},
          {"TemplateContent",
           {{"Subject", "Hello {{name}}"},
            {"Text", "Hi {{name}}, welcome."},
            {"Html", "<p>Hi {{name}}</p>"}}}};
}

TEST(TemplateRoutes, CreateGetUpdateDelete) {
  TestServer server;
  Response r = server.post("/v2/email/templates", welcome());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "{}");
  EXPECT_EQ(r.headers["content-type"], "application/json");
  EXPECT_FALSE(r.headers["x-amzn-requestid"].empty());
  // The Date header comes from the real clock (the SDKs correct their skew with it).
  EXPECT_EQ(r.headers["date"].size(), std::string("Sat, 14 Mar 2026 15:09:26 GMT").size());

  r = server.get("/v2/email/templates/welcome");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json(), json({{"TemplateName", "welcome"},
                            {"TemplateContent",
                             {{"Subject", "Hello {{name}}"},
                              {"Text", "Hi {{name}}, welcome."},
                              {"Html", "<p>Hi {{name}}</p>"}}}}));

  r = server.put("/v2/email/templates/welcome",
                 {{"TemplateContent", {{"Subject", "New"}, {"Text", "Only text"}}}});
  ASSERT_EQ(r.status, 200) << r.body;
  r = server.get("/v2/email/templates/welcome");
  EXPECT_EQ(r.json()["TemplateContent"], json({{"Subject", "New"}, {"Text", "Only text"}}));

  r = server.del("/v2/email/templates/welcome");
  ASSERT_EQ(r.status, 200) << r.body;
  r = server.get("/v2/email/templates/welcome");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.error_type(), "NotFoundException");
  EXPECT_EQ(r.message(), "Template welcome does not exist.");
  EXPECT_EQ(r.json()["__type"], "NotFoundException");
}

TEST(TemplateRoutes, Errors) {
  TestServer server;
  ASSERT_EQ(server.post("/v2/email/templates", welcome()).status, 200);

  Response r = server.post("/v2/email/templates", welcome());
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.error_type(), "AlreadyExistsException");
  EXPECT_EQ(r.message(), "Template welcome already exists.");

  r = server.post("/v2/email/templates", {{"TemplateName", "x"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.error_type(), "BadRequestException");
  EXPECT_EQ(r.message(), "Missing required field TemplateContent.");

  r = server.post("/v2/email/templates",
                  {{"TemplateName", "bad name"}, {"TemplateContent", {{"Text", "x"}}}});
  EXPECT_EQ(r.message(),
            "TemplateName may only contain ASCII letters, digits, '_' and '-'; got 'bad name'.");

  r = server.post("/v2/email/templates",
                  {{"TemplateName", "t"}, {"TemplateContent", {{"Subject", "only subject"}}}});
  EXPECT_EQ(r.message(), "TemplateContent must have a Text or an Html part.");

  r = server.post("/v2/email/templates",
                  {{"TemplateName", "t"}, {"TemplateContent", {{"Text", "x"}, {"Txt", "y"}}}});
  EXPECT_EQ(r.message(), "Unknown field TemplateContent.Txt.");

  r = server.post("/v2/email/templates",
                  {{"TemplateName", "t"}, {"TemplateContent", {{"Text", 5}}}});
  EXPECT_EQ(r.message(), "TemplateContent.Text must be a string, not a number.");

  r = server.post("/v2/email/templates",
                  {{"TemplateName", "t"}, {"TemplateContent", {{"Html", "<p>{{#if x}}</p>"}}}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.message(),
            "The template does not compile: TemplateContent.Html: line 1, column 4: {{#if}} is "
            "never closed (expected {{/if}})");

  r = server.post("/v2/email/templates", {{"TemplateName", "t"},
                                          {"TemplateContent", {{"Text", "x"}}},
                                          {"Tags", {{{"Key", "a"}, {"Value", "b"}}}}});
  EXPECT_EQ(r.message(), "Tags: tags on email templates are not supported by this service.");

  r = server.put("/v2/email/templates/missing", {{"TemplateContent", {{"Text", "x"}}}});
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.message(), "Template missing does not exist.");

  r = server.del("/v2/email/templates/missing");
  EXPECT_EQ(r.status, 404);
}

TEST(TemplateRoutes, ListPages) {
  TestServer server;
  for (const char* name : {"a", "b", "c"}) {
    json t = welcome();
    t["TemplateName"] = name;
    ASSERT_EQ(server.post("/v2/email/templates", t).status, 200);
  }
  Response r = server.get("/v2/email/templates?PageSize=2");
  ASSERT_EQ(r.status, 200) << r.body;
  double created = static_cast<double>(duration_cast<seconds>(kNow.time_since_epoch()).count());
  json page = r.json();
  EXPECT_EQ(page["TemplatesMetadata"],
            json({{{"TemplateName", "a"}, {"CreatedTimestamp", created}},
                  {{"TemplateName", "b"}, {"CreatedTimestamp", created}}}));
  ASSERT_TRUE(page["NextToken"].is_string());
  r = server.get("/v2/email/templates?PageSize=2&NextToken=" +
                 TestServer::encode(page["NextToken"]));
  EXPECT_EQ(
      r.json(),
      json({{"TemplatesMetadata", {{{"TemplateName", "c"}, {"CreatedTimestamp", created}}}}}));

  r = server.get("/v2/email/templates?PageSize=101");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.message(),
            "The query parameter PageSize must be an integer between 0 and 100; got "
            "'101'.");
  r = server.get("/v2/email/templates?Page=1");
  EXPECT_EQ(r.message(), "Unknown query parameter Page.");
  r = server.get("/v2/email/templates?NextToken=zz");
  EXPECT_EQ(r.message(), "NextToken is not a token this service returned.");
}

TEST(TemplateRoutes, TestRenderGivesAMimePreview) {
  TestServer server;
  ASSERT_EQ(server.post("/v2/email/templates", welcome()).status, 200);
  Response r = server.post("/v2/email/templates/welcome/render",
                           {{"TemplateData", R"({"name":"Ann & <Bob>"})"}});
  ASSERT_EQ(r.status, 200) << r.body;
  std::string preview = r.json()["RenderedTemplate"];
  EXPECT_EQ(preview.substr(0, preview.find("Content-Type")),
            "Date: Sat, 14 Mar 2026 15:09:26 +0000\r\n"
            "Subject: Hello Ann & <Bob>\r\n"
            "MIME-Version: 1.0\r\n");
  EXPECT_NE(preview.find("\r\nHi Ann & <Bob>, welcome.\r\n"), std::string::npos) << preview;
  // Handlebars escaping in the HTML part by default.
  EXPECT_NE(preview.find("<p>Hi Ann &amp; &lt;Bob&gt;</p>"), std::string::npos) << preview;

  // SES's behaviour when the account asks for it: no escaping.
  store::Account account = *server.store().account();
  account.ses_compatible_escaping = true;
  ASSERT_TRUE(server.store().put_account(account).is_ok());
  r = server.post("/v2/email/templates/welcome/render",
                  {{"TemplateData", R"({"name":"Ann & <Bob>"})"}});
  preview = r.json()["RenderedTemplate"];
  EXPECT_NE(preview.find("<p>Hi Ann & <Bob></p>"), std::string::npos) << preview;
}

TEST(TemplateRoutes, TestRenderErrors) {
  TestServer server;
  ASSERT_EQ(server.post("/v2/email/templates", welcome()).status, 200);
  Response r = server.post("/v2/email/templates/welcome/render", {{"TemplateData", "{}"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.message(),
            "The template does not render: welcome.Subject: line 1, column 9: \"name\" is not "
            "defined (strict mode)");
  r = server.post("/v2/email/templates/welcome/render", {{"TemplateData", "[1]"}});
  EXPECT_EQ(
      r.message(),
      "TemplateData must be a JSON object in a string, e.g. \"{\\\"name\\\":\\\"Alice\\\"}\".");
  r = server.post("/v2/email/templates/welcome/render", json::object());
  EXPECT_EQ(r.message(), "Missing required field TemplateData.");
  r = server.post("/v2/email/templates/nope/render", {{"TemplateData", "{}"}});
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.message(), "Template nope does not exist.");
}

}  // namespace
}  // namespace magnetic::api::testing
