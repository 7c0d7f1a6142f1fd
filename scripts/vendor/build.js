// Builds the browser libraries rolloutops serves from static/vendor/ (run through scripts/build-vendor).
//
// plotly.js: a partial bundle with only the trace types the charts draw (scatter, bar, heatmap;
// rollouts/charts.py and telemetry/charts.py), about a quarter of the full 4.8 MB, and its CSS as a
// file, so the pages need no inline styles under the Content-Security-Policy.
// idiomorph: htmx's morph swap, which updates live regions without touching what a person is
// working in (docs/pages.md).
//
// Inputs are pinned by package-lock.json, esbuild's output is deterministic: the same lockfile
// gives byte-identical files.
//
// Offline: plotly.js's config has two defaults that point at Plotly's servers (the topojson of geo
// charts on its CDN, the chart-studio upload URL). Neither is used by these traces, but the app
// must never reach out, so the bundle gets local or empty defaults, and the build fails if the
// bundle names any host but those of text a browser never requests (tests/core/test_offline.py
// holds the committed files to the same rule).
"use strict";

const fs = require("fs");
const path = require("path");
const esbuild = require("esbuild");

const ROOT = path.resolve(__dirname, "..", "..");
const OUT = path.join(ROOT, "static", "vendor");
// The trace types the charts use; scatter is part of plotly's core.
const TRACES = ["scatter", "bar", "heatmap"];

const MODULES = path.join(__dirname, "node_modules");

function packageDir(name) {
  return path.join(MODULES, name);
}

function version(name) {
  return JSON.parse(fs.readFileSync(path.join(packageDir(name), "package.json"), "utf8")).version;
}

function write(file, text) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  console.log(`${path.relative(ROOT, file)}  ${(Buffer.byteLength(text) / 1024).toFixed(0)} KiB`);
}

// plotly.js's config attributes whose default is a remote server's URL, and what they become.
const REMOTE_DEFAULTS = {
  topojsonURL: "/static/vendor/plotly/topojson/",
  plotlyServerURL: "",
};
// The hosts an absolute URL in the bundle may name: XML namespace names and the documentation links
// of error messages, text a browser never requests. Any other host fails the build.
const TEXT_HOSTS = new Set(["www.w3.org", "plotly.com", "developer.mozilla.org", "github.com"]);

function offline(text) {
  for (const [attribute, local] of Object.entries(REMOTE_DEFAULTS)) {
    const remote = new RegExp(`(${attribute}:\\{[^{}]*?dflt:)"https?://[^"]*"`);
    if (!remote.test(text)) {
      throw new Error(`plotly.js changed: ${attribute} has no remote default in the bundle; review REMOTE_DEFAULTS`);
    }
    text = text.replace(remote, `$1${JSON.stringify(local)}`);
  }
  // topojsonURL's description says where the files came from; this bundle has none.
  text = text.replace(/"By default, the topojson files are fetched from [^"]*"/, '"This bundle has no geo charts and no topojson."');
  for (const [url, host] of text.matchAll(/https?:\/\/([a-z0-9-]+(?:\.[a-z0-9-]+)+)/gi)) {
    if (!TEXT_HOSTS.has(host.toLowerCase())) {
      throw new Error(`the bundle names a host it could fetch from: ${url}`);
    }
  }
  return text;
}

async function plotly() {
  const ver = version("plotly.js");
  const entry = [
    "var Plotly = require('plotly.js/lib/core');",
    `Plotly.register([${TRACES.filter((t) => t !== "scatter").map((t) => `require('plotly.js/lib/${t}')`).join(", ")}]);`,
    "module.exports = Plotly;",
  ].join("\n");
  // The options of plotly.js's own esbuild-config.js, minus the WebGL plugins none of these traces need.
  const result = await esbuild.build({
    stdin: { contents: entry, resolveDir: __dirname, sourcefile: "plotly-partial-entry.js" },
    bundle: true,
    minify: true,
    format: "iife",
    globalName: "Plotly",
    target: "es2016",
    define: { global: "window", "define.amd": "false" },
    alias: { stream: "stream-browserify" },
    // Only the map traces import a stylesheet (maplibre's); none are bundled here.
    loader: { ".css": "empty" },
    legalComments: "none",
    write: false,
    logLevel: "warning",
  });
  const banner = `/*! plotly.js v${ver} (MIT, Copyright Plotly, Inc.), partial bundle: ${TRACES.join(", ")}. ` +
    "Built by scripts/build-vendor from the npm package; do not edit. */\n";
  write(path.join(OUT, "plotly", "plotly-partial.min.js"), banner + offline(result.outputFiles[0].text));

  // plotly.js would insert these rules into a <style> element it creates (build/plotcss.js), which a
  // strict style-src refuses. The same rules as a stylesheet; the page marks it with the id and class
  // plotly.js looks for, so it skips the insertion (src/lib/dom.js, addRelatedStyleRule).
  const collected = [];
  const plotcss = path.join(packageDir("plotly.js"), "build", "plotcss.js");
  const source = fs.readFileSync(plotcss, "utf8").replace(
    /var Lib = require\([^)]*\);/, "var Lib = {addStyleRule: function (s, r) { collected.push(s + '{' + r + '}'); }};");
  new Function("collected", source)(collected);
  write(path.join(OUT, "plotly", "plotly.css"),
    `/*! plotly.js v${ver} (MIT): the rules of build/plotcss.js, built by scripts/build-vendor; do not edit. */\n` +
    // insertRule(…, 0) put each rule before the previous ones: the same order, for the same cascade.
    collected.reverse().join("\n") + "\n");
}

function idiomorph() {
  const pkg = packageDir("idiomorph");
  const ver = version("idiomorph");
  const text = fs.readFileSync(path.join(pkg, "dist", "idiomorph-ext.min.js"), "utf8");
  write(path.join(OUT, "idiomorph", "idiomorph-ext.min.js"),
    `/*! idiomorph v${ver} (0BSD, Big Sky Software) with its htmx extension; copied by scripts/build-vendor. */\n` + text);
}

function licenses() {
  for (const [pkg, dir] of [["plotly.js", "plotly"], ["idiomorph", "idiomorph"]]) {
    const base = packageDir(pkg);
    const file = fs.readdirSync(base).find((name) => /^licen[cs]e/i.test(name));
    fs.copyFileSync(path.join(base, file), path.join(OUT, dir, "LICENSE"));
  }
}

(async () => {
  await plotly();
  idiomorph();
  licenses();
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
