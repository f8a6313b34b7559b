// Runs the demo storefront's own script in Node against a minimal DOM, over real HTTP:
//   node storefront_harness.js BASE_URL ID_TYPE VALUE NOW
// loads the page (and its key) like a browser, identifies the visitor through the form, clicks
// "Add to cart" on the first card shown, and prints what the page shows as JSON.
"use strict";
const vm = require("vm");
const [base, idType, value, now] = process.argv.slice(2);

// The page's clock, pinned to the warehouse's "now" like the server's.
class PinnedDate extends Date {
  constructor(...args) { if (args.length) super(...args); else super(now); }
}

class El {
  constructor(tag, selector) {
    Object.assign(this, { tagName: tag, selector, children: [], dataset: {}, hidden: false, className: "",
                          value: "", text: "", listeners: {} });
  }
  set textContent(v) { this.text = String(v); this.children = []; }
  get textContent() { return this.text + this.children.map((c) => c.textContent).join(""); }
  set innerHTML(html) {  // the card's template: a title, price, note and two buttons
    this.html = html;
    this.children = [["h4", "h4"], ["p", ".price"], ["p", ".muted"], ["button", ".view"], ["button", ".cart"]]
      .map(([tag, sel]) => new El(tag, sel));
  }
  querySelector(sel) { return this.children.find((c) => c.selector === sel) || null; }
  replaceChildren(...nodes) { this.children = nodes; this.text = ""; }
  addEventListener(type, fn) { (this.listeners[type] ||= []).push(fn); }
  async fire(type) { for (const fn of this.listeners[type] || []) await fn({ preventDefault() {} }); }
}

async function main() {
  const page = await (await fetch(base + "/")).text();
  const key = /window\.ATTIVA_KEY = "([^"]+)"/.exec(page)[1];
  const script = await (await fetch(base + "/storefront.js")).text();
  const ids = ["identify", "id-type", "id-value", "greeting", "promotion", "products-title", "products", "log"];
  const elements = Object.fromEntries(ids.map((id) => [id, new El("div", "#" + id)]));
  const store = new Map();
  const window = { ATTIVA_KEY: key };
  const context = {
    window, location: { pathname: "/" }, crypto: globalThis.crypto, Date: PinnedDate,
    document: { getElementById: (id) => elements[id], createElement: (tag) => new El(tag) },
    localStorage: { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, String(v)) },
    fetch: (url, options) => fetch(base + url, options),
  };
  vm.runInNewContext(script, context);
  await window.attivaReady;
  elements["id-type"].value = idType;
  elements["id-value"].value = value;
  await elements.identify.fire("submit");
  const cards = (el) => el.children.map((c) => c.dataset.productId);
  const shown = {
    state: elements.greeting.dataset.state, greeting: elements.greeting.textContent,
    promotion_hidden: elements.promotion.hidden, promotions: cards(elements.promotion),
    title: elements["products-title"].textContent, products: cards(elements.products),
    device_id: store.get("attiva_device_id"),
  };
  const first = elements.promotion.children[0] || elements.products.children[0];
  if (first) await first.querySelector(".cart").fire("click");
  shown.log = elements.log.textContent.trim().split("\n").reverse();
  console.log(JSON.stringify(shown));
}

main().catch((error) => { console.error(error); process.exit(1); });
