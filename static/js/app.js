// rolloutops in the browser: live regions that leave a person's work alone, the charts, the time
// zone proposal, dismissable messages, the ticket's "other…" label. No inline script anywhere: the
// Content-Security-Policy forbids it (docs/pages.md).
(function () {
  "use strict";

  // --- Live regions --------------------------------------------------------------------------
  // A region marked data-live polls with htmx (`hx-trigger="every 5s"`); a tab nobody looks at
  // does not ask (htmx's own filter syntax would need eval, which the policy forbids).
  document.addEventListener("htmx:beforeRequest", function (evt) {
    if (document.visibilityState !== "visible" && evt.detail.elt.hasAttribute("data-live")) {
      evt.preventDefault();
    }
  });

  // What someone changed in a field and has not sent yet.
  function edited(node) {
    if (node instanceof HTMLTextAreaElement) { return node.value !== node.defaultValue; }
    if (node instanceof HTMLSelectElement) {
      return Array.prototype.some.call(node.options, function (o) { return o.selected !== o.defaultSelected; });
    }
    if (node instanceof HTMLInputElement) {
      if (node.type === "hidden") { return false; }
      if (node.type === "checkbox" || node.type === "radio") { return node.checked !== node.defaultChecked; }
      return node.value !== node.defaultValue;
    }
    return false;
  }

  function configureMorph() {
    if (!window.Idiomorph) { return; }
    Idiomorph.defaults.ignoreActiveValue = true;  // the field with the cursor keeps its text
    Idiomorph.defaults.callbacks.beforeNodeMorphed = function (oldNode) {
      if (oldNode.nodeType !== Node.ELEMENT_NODE) { return true; }
      // A drawn chart keeps its drawing (and its zoom): drawCharts redraws it from the new figure.
      if (oldNode.classList.contains("js-plotly-plot")) { return false; }
      // A field someone is filling in keeps what they typed, focused or not.
      return !edited(oldNode);
    };
    Idiomorph.defaults.callbacks.beforeAttributeUpdated = function (name, element) {
      // A <details> someone opened stays open (and one they closed, closed).
      if (name === "open" && element.tagName === "DETAILS") { return false; }
      // A scrolling box keeps the tabindex markScrollers gave it (and the focus it may hold).
      return !(name === "tabindex" && element.matches(SCROLLERS));
    };
  }

  // --- Charts --------------------------------------------------------------------------------
  // A chart is <div data-figure="id"> beside {{ figure|json_script:"id" }} (rollouts/charts.py,
  // telemetry/charts.py). Redrawn only when its figure changed, with a constant uirevision, so a
  // zoom survives every refresh.
  // Nothing is fetched from Plotly's servers (docs/pages.md): no cloud button, no remote topojson.
  var PLOT_CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["select2d", "lasso2d"],
                      showSendToCloud: false, showEditInChartStudio: false, plotlyServerURL: "" };

  function drawCharts(root) {
    if (!window.Plotly) { return; }
    root.querySelectorAll("[data-figure]").forEach(function (el) {
      var source = document.getElementById(el.getAttribute("data-figure"));
      if (!source) { return; }
      var text = source.textContent;
      if (el.rolloutopsFigure === text) { return; }
      el.rolloutopsFigure = text;
      var fig = JSON.parse(text);
      var layout = fig.layout || {};
      if (layout.uirevision === undefined) { layout.uirevision = el.getAttribute("data-figure"); }
      window.Plotly.react(el, fig.data || [], layout, PLOT_CONFIG).then(function () { drill(el); });
    });
  }

  // A chart whose points carry a URL in customdata[.., url] (its last item) opens it on click:
  // a segment's bar opens its discrepant pairs.
  function drill(el) {
    if (el.rolloutopsDrill || !el.hasAttribute("data-drill")) { return; }
    el.rolloutopsDrill = true;
    el.on("plotly_click", function (data) {
      var point = data.points && data.points[0];
      var custom = point && point.customdata;
      var url = Array.isArray(custom) ? custom[custom.length - 1] : null;
      if (typeof url === "string" && url.charAt(0) === "/") { window.location.assign(url); }
    });
  }

  // --- Scrollable boxes ----------------------------------------------------------------------
  // A table or trace wider than its box scrolls inside it (never the page); while it does, the
  // keyboard can reach it to scroll it too.
  var SCROLLERS = ".table-scroll, .scrolls, .scroll-x > .card, pre";

  function markScrollers() {
    document.querySelectorAll(SCROLLERS).forEach(function (el) {
      if (el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1) {
        el.setAttribute("tabindex", "0");
      } else if (el.getAttribute("tabindex") === "0") {
        el.removeAttribute("tabindex");
      }
    });
  }
  window.addEventListener("resize", markScrollers);

  // --- Time zone ----------------------------------------------------------------------------
  function browserZone() {
    try { return Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { return ""; }
  }

  function proposeZone() {
    var zone = browserZone();
    if (!zone) { return; }
    document.querySelectorAll("[data-tz-browser]").forEach(function (el) { el.textContent = zone; });
    document.querySelectorAll("[data-tz-browser-hint]").forEach(function (el) { el.hidden = false; });
    var proposal = document.querySelector("[data-tz-proposal]");
    if (proposal) {
      var use = proposal.querySelector("[data-tz-use]");
      use.value = zone;
      // The browser's zone is the one shown already: only "keep" is left to say.
      use.hidden = zone === proposal.getAttribute("data-tz-current");
      proposal.querySelector("[data-tz-same]").hidden = !use.hidden;
      proposal.hidden = false;
    }
  }

  // --- Messages ------------------------------------------------------------------------------
  document.addEventListener("click", function (evt) {
    var button = evt.target.closest("[data-dismiss]");
    if (button) { button.closest("li").remove(); }
  });

  // --- The ticket's decision: "other…" asks for the new label and its confirmation ----------
  function syncLabelChoice(root) {
    root.querySelectorAll("[data-label-choice]").forEach(function (select) {
      var form = select.form;
      var other = select.value === select.getAttribute("data-label-choice");
      form.querySelectorAll("[data-other-label]").forEach(function (el) {
        el.hidden = !other;
        el.querySelectorAll("input").forEach(function (input) {
          input.disabled = !other;
          // The new label is needed; its confirmation the server asks for, with the reason.
          if (input.type === "text") { input.required = other; }
        });
      });
    });
  }
  document.addEventListener("change", function (evt) {
    if (evt.target.matches("[data-label-choice]")) { syncLabelChoice(evt.target.form); }
  });

  document.addEventListener("DOMContentLoaded", function () {
    configureMorph();
    drawCharts(document);
    proposeZone();
    syncLabelChoice(document);
    markScrollers();
  });
  document.addEventListener("htmx:afterSettle", function () {
    drawCharts(document);
    syncLabelChoice(document);
    markScrollers();
  });
})();
