// Prints the JS SDK vectors of sigv4_test.cc, computed by the signer the AWS SDK for JavaScript v3
// uses. Needs @smithy/signature-v4 and @aws-crypto/sha256-js installed (npm) where it runs.
const { SignatureV4 } = require("@smithy/signature-v4");
const { Sha256 } = require("@aws-crypto/sha256-js");
const signer = new SignatureV4({
  credentials: { accessKeyId: "AKIAEXAMPLE000000001", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" },
  region: "eu-west-1", service: "ses", sha256: Sha256, uriEscapePath: true,
});
const when = new Date(Date.UTC(2026, 2, 14, 15, 9, 26));
(async () => {
  const cases = [
    ["js_identity_encoded", "GET", "/v2/email/identities/J%C3%B6rg%40example.com", {}, ""],
    ["js_list_query", "GET", "/v2/email/suppression/addresses", {Reason: ["COMPLAINT", "BOUNCE"], PageSize: "10", NextToken: "a+b=="}, ""],
    ["js_post", "POST", "/v2/email/outbound-bulk-emails", {}, '{"x":1}'],
  ];
  for (const [name, method, path, query, body] of cases) {
    const req = { method, protocol: "http:", hostname: "127.0.0.1", port: 8443, path, query,
      headers: { host: "127.0.0.1:8443", "content-type": "application/json" }, body };
    const s = await signer.sign(req, { signingDate: when });
    const qs = Object.entries(query).flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map(x => encodeURIComponent(k) + "=" + encodeURIComponent(x))).join("&");
    console.log(name, method, path + (qs ? "?" + qs : ""), JSON.stringify(s.headers));
  }
})();
