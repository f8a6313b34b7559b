// Demo storefront: asks the personalization API who the visitor is, shows their suggestions and the
// promotion on their favourite product and the in-app messages due for them (GET /v1/messages/...), and posts
// page_view, identify, product_view, add_to_cart and, for each message, message_displayed, message_clicked and
// message_dismissed with its message_id.
// Its key is a browser key: it may look up only this visitor, by device id or by the identity token
// a shop's backend signs at login (here the demo's /demo/sign-in stands in for that backend).
"use strict";
(function () {
  const key = window.ATTIVA_KEY;
  const headers = { "Authorization": "Bearer " + key, "Content-Type": "application/json" };
  const $ = (id) => document.getElementById(id);

  function deviceId() {
    let id = localStorage.getItem("attiva_device_id");
    if (!id) {
      id = "web-" + crypto.randomUUID();
      localStorage.setItem("attiva_device_id", id);
    }
    return id;
  }

  let visitor = { deviceId: deviceId() };

  function log(line) { $("log").textContent = line + "\n" + $("log").textContent; }

  async function send(type, extra) {
    const event = Object.assign({
      event_id: crypto.randomUUID(), event_type: type, occurred_at: new Date().toISOString(),
      anonymous_id: visitor.deviceId, platform: "web", url: location.pathname,
    }, extra || {});
    // Signed: the API adds the token's email and trusts the event for that customer.
    const answer = await fetch("/v1/events", { method: "POST", headers, body: JSON.stringify(event) });
    const body = await answer.json();
    log(`${type} ${extra && extra.product_id ? extra.product_id + " " : ""}-> ${answer.status} ${body.results ? body.results[0].status : body.error.code}`);
    return body;
  }

  function money(n) { return n == null ? "" : "€ " + Number(n).toFixed(2); }

  function card(product, promo) {
    const div = document.createElement("div");
    div.className = "card" + (promo ? " promo" : "");
    div.dataset.productId = product.product_id;
    const price = product.is_on_promotion
      ? `<s>${money(product.price)}</s> <strong>${money(product.current_price)}</strong> (-${product.discount_pct}%)`
      : money(product.price);
    div.innerHTML = `<h4></h4><p class="price">${price}</p><p class="muted"></p>
      <button type="button" class="view">View</button> <button type="button" class="cart">Add to cart</button>`;
    div.querySelector("h4").textContent = product.product_name || product.product_id;
    div.querySelector(".muted").textContent = promo ? (product.promotion_name || "On promotion") : (product.reason || "");
    div.querySelector(".view").addEventListener("click", () => send("product_view", { product_id: product.product_id }));
    div.querySelector(".cart").addEventListener("click", () => send("add_to_cart", { product_id: product.product_id, quantity: 1 }));
    return div;
  }

  // In-app messages: shown as banners; each reports it was displayed, and its link's click or its dismissal.
  function banner(message) {
    const div = document.createElement("div");
    div.className = "card message";
    div.dataset.messageId = message.message_id;
    div.innerHTML = `<div><strong></strong><p></p><a target="_blank" rel="noopener">Scopri</a></div>
      <button type="button" class="dismiss" aria-label="dismiss">×</button>`;
    div.querySelector("strong").textContent = message.title;
    div.querySelector("p").textContent = message.body;
    const link = div.querySelector("a");
    if (message.link) link.href = message.link; else link.remove();
    link.addEventListener("click", () => send("message_clicked", { message_id: message.message_id }));
    div.querySelector(".dismiss").addEventListener("click", async () => {
      div.remove();
      await send("message_dismissed", { message_id: message.message_id });
    });
    return div;
  }

  async function showMessages(path) {
    const answer = await fetch(path, { headers });
    const messages = answer.ok ? (await answer.json()).messages || [] : [];
    $("messages").replaceChildren(...messages.map(banner));
    await Promise.all(messages.map((m) => send("message_displayed", { message_id: m.message_id })));
  }

  function generic(message) {
    $("messages").replaceChildren();
    $("greeting").textContent = message;
    $("greeting").dataset.state = "generic";
    $("promotion").hidden = true;
    $("products-title").textContent = "Our products";
    $("products").replaceChildren();
  }

  async function signIn(email) {
    const answer = await fetch("/demo/sign-in", { method: "POST", headers: { "Content-Type": "application/json" },
                                                  body: JSON.stringify({ email }) });
    return answer.ok ? (await answer.json()).token : null;
  }

  async function identify(idType, value) {
    let path = "/v1/profiles/me";
    if (idType === "email") {
      const token = await signIn(value.trim());
      if (!token) return generic("Welcome!");
      headers["X-Attiva-Identity"] = token;
    } else {
      visitor.deviceId = value.trim();
      delete headers["X-Attiva-Identity"];
      path = `/v1/profiles/device_id/${encodeURIComponent(visitor.deviceId)}`;
    }
    await send("identify");
    const answer = await fetch(path, { headers });
    const body = await answer.json();
    // Unknown, without profiling consent or shared: the API answers all three alike to a browser key.
    if (!answer.ok || !body.personalized) return generic("Welcome! Have a look around.");
    $("greeting").textContent = `Ciao ${body.traits.first_name || ""}! Picked for you:`;
    $("greeting").dataset.state = "personalized";
    const promos = body.promotions || [];
    $("promotion").hidden = promos.length === 0;
    $("promotion").replaceChildren(...promos.map((p) => card(p, true)));
    $("products-title").textContent = "Recommended for you";
    $("products").replaceChildren(...(body.recommendations || []).map((p) => card(p, false)));
    window.attivaMessages = showMessages(path.replace("/v1/profiles/", "/v1/messages/"));
    await window.attivaMessages;
  }

  $("identify").addEventListener("submit", (e) => {
    e.preventDefault();
    return identify($("id-type").value, $("id-value").value);
  });
  window.attivaReady = send("page_view");
})();
