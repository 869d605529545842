"""Regression (template_expansion_bomb): a template of nested loops over the data rendered without
bound (1 GB and 12 GB of memory for 100 items). Through the API it is now refused with a
BadRequestException naming the limit, and the service goes on answering.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness as h

BOMB = "{{#each @root.a}}" * 4 + "xxxxxxxxxx" + "{{/each}}" * 4


def main():
    work = h.tempdir()
    data = os.path.join(work, "data")
    with h.test_run():
        key = h.keys_create(data, "bomb")
        serve, api_port, _ = h.start_serve(data, routes=[("r.example", 9)])
        api = h.SesClient(api_port, key["AccessKeyId"], key["SecretAccessKey"])
        api.ok("POST", "/v2/email/identities", {"EmailIdentity": "bomb.example"})
        api.ok("POST", "/v2/email/templates",
               {"TemplateName": "bomb", "TemplateContent": {"Subject": "s", "Text": BOMB}})
        items = "[" + ",".join(str(i) for i in range(300)) + "]"
        r = api.call("POST", "/v2/email/templates/bomb/render", {"TemplateData": '{"a": ' + items + "}"})
        h.check_eq(r.status, 400, f"render of the bomb: {r!r}")
        h.check_eq(r.headers.get("x-amzn-errortype", "").split(":")[0], "BadRequestException", "error type")
        h.check("max_output" in r.doc.get("message", ""), f"the message names the limit: {r.doc!r}")
        r = api.call("POST", "/v2/email/outbound-emails", {
            "FromEmailAddress": "a@bomb.example", "Destination": {"ToAddresses": ["x@r.example"]},
            "Content": {"Template": {"TemplateName": "bomb", "TemplateData": '{"a": ' + items + "}"}}})
        h.check_eq(r.status, 400, f"send of the bomb: {r!r}")
        # Still answering.
        api.ok("GET", "/v2/email/account")
        h.stop_serve(serve, data)
        print("template expansion bomb refused at render and at send; the service goes on")
    print("1 passed, 0 failed")


main()
