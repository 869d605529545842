#!/usr/bin/env node
// Reference renderer for the render module's differential test: reads a JSON array of
// {template, data, escape, partials?, compat?} from stdin and writes a JSON array with, for each
// case, handlebars.js's output string, or {"error": message} when it throws.
'use strict';

const Handlebars = require('handlebars');

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const cases = JSON.parse(input);
  const results = cases.map((c) => {
    try {
      const env = Handlebars.create();
      const options = { noEscape: c.escape === false, compat: !!c.compat };
      for (const [name, source] of Object.entries(c.partials || {})) {
        env.registerPartial(name, env.compile(source, options));
      }
      return String(env.compile(c.template, options)(c.data));
    } catch (e) {
      return { error: String(e && e.message ? e.message : e) };
    }
  });
  process.stdout.write(JSON.stringify(results));
});
