#!/usr/bin/env node
// The SES v2 flow through the AWS SDK for JavaScript (@aws-sdk/client-sesv2), for
// tests/integration/test_serve_sdk.py, which starts `magnetic serve` and checks what this prints.
//
// Reads the endpoint and keys from the environment (MAGNETIC_API_URL, MAGNETIC_ACCESS_KEY_ID,
// MAGNETIC_SECRET_ACCESS_KEY, MAGNETIC_FROM, MAGNETIC_RCPT_DOMAIN). Creates a template, sends a
// simple, a templated and a bulk email, reads the account, then makes three calls that must fail
// and records how the SDK reports each: its error name, HTTP status and whether the error is an
// instance of the SDK's own class for it. Prints one JSON object on stdout; exits 1 only when a
// call that must succeed fails.
'use strict';

const {
  SESv2Client,
  CreateEmailTemplateCommand,
  SendEmailCommand,
  SendBulkEmailCommand,
  GetAccountCommand,
  NotFoundException,
  BadRequestException,
  SESv2ServiceException,
} = require('@aws-sdk/client-sesv2');

const BULK = 10;

function env(name) {
  const value = process.env[name];
  if (!value) {
    process.stderr.write(`ses_sdk_flow: ${name} is not set\n`);
    process.exit(2);
  }
  return value;
}

const endpoint = env('MAGNETIC_API_URL');
const accessKeyId = env('MAGNETIC_ACCESS_KEY_ID');
const secret = env('MAGNETIC_SECRET_ACCESS_KEY');
const from = env('MAGNETIC_FROM');
const domain = env('MAGNETIC_RCPT_DOMAIN');

function client(secretAccessKey) {
  // One attempt: a refusal must show as it is, not after the SDK's retries.
  return new SESv2Client({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId, secretAccessKey },
    maxAttempts: 1,
  });
}

// How the SDK reported a call that had to fail; `resolved` when it did not fail at all.
async function refusal(promise, cls) {
  try {
    await promise;
    return { resolved: true };
  } catch (e) {
    return {
      resolved: false,
      name: e.name,
      status: e.$metadata ? e.$metadata.httpStatusCode : null,
      fault: e.$fault || null,
      message: e.message,
      serviceException: e instanceof SESv2ServiceException,
      instanceOf: e instanceof cls,
    };
  }
}

function bulkEntries(count, prefix) {
  const entries = [];
  for (let i = 0; i < count; i++) {
    entries.push({
      Destination: { ToAddresses: [`${prefix}${i}@${domain}`] },
      ReplacementEmailContent: {
        ReplacementTemplate: { ReplacementTemplateData: JSON.stringify({ name: `Bulk ${i}` }) },
      },
    });
  }
  return entries;
}

async function main() {
  const ses = client(secret);
  const out = {};

  await ses.send(new CreateEmailTemplateCommand({
    TemplateName: 'sdk-welcome',
    TemplateContent: {
      Subject: 'SDK hello {{name}}',
      Text: 'Hi {{name}},\nfrom the SDK.\n',
      Html: '<p>Hi <b>{{name}}</b></p>',
    },
  }));

  const simple = await ses.send(new SendEmailCommand({
    FromEmailAddress: from,
    Destination: { ToAddresses: [`simple@${domain}`] },
    Content: {
      Simple: {
        Subject: { Data: 'SDK simple' },
        Body: { Text: { Data: 'Plain body\n' }, Html: { Data: '<p>Html body</p>' } },
      },
    },
  }));
  out.simple = simple.MessageId;

  const templated = await ses.send(new SendEmailCommand({
    FromEmailAddress: from,
    Destination: { ToAddresses: [`templated@${domain}`] },
    Content: {
      Template: { TemplateName: 'sdk-welcome', TemplateData: JSON.stringify({ name: 'Tess' }) },
    },
  }));
  out.templated = templated.MessageId;

  const bulk = await ses.send(new SendBulkEmailCommand({
    FromEmailAddress: from,
    DefaultContent: {
      Template: { TemplateName: 'sdk-welcome', TemplateData: JSON.stringify({ name: 'friend' }) },
    },
    BulkEmailEntries: bulkEntries(BULK, 'bulk'),
  }));
  out.bulk = bulk.BulkEmailEntryResults.map((r) => ({ Status: r.Status, MessageId: r.MessageId }));

  const account = await ses.send(new GetAccountCommand({}));
  out.account = { SendQuota: account.SendQuota, SendingEnabled: account.SendingEnabled };

  // The refusals: a wrong secret, a template that does not exist, one entry over SES's 50.
  const wrong = secret.slice(0, -1) + (secret.endsWith('A') ? 'B' : 'A');
  out.badSignature = await refusal(client(wrong).send(new GetAccountCommand({})),
      SESv2ServiceException);
  out.missingTemplate = await refusal(ses.send(new SendEmailCommand({
    FromEmailAddress: from,
    Destination: { ToAddresses: [`missing@${domain}`] },
    Content: { Template: { TemplateName: 'no-such-template', TemplateData: '{}' } },
  })), NotFoundException);
  out.bulk51 = await refusal(ses.send(new SendBulkEmailCommand({
    FromEmailAddress: from,
    DefaultContent: {
      Template: { TemplateName: 'sdk-welcome', TemplateData: JSON.stringify({ name: 'friend' }) },
    },
    BulkEmailEntries: bulkEntries(51, 'over'),
  })), BadRequestException);

  const after = await ses.send(new GetAccountCommand({}));
  out.sentAfterRefusals = after.SendQuota.SentLast24Hours;

  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
  process.stderr.write(`ses_sdk_flow: ${e.name}: ${e.message}\n`);
  process.exit(1);
});
