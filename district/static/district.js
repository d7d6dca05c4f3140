// The district page's emergency banner: polls /api/emergencies every second, shows each
// active Darurat (post, desa, time) with its state, beeps (Web Audio, nothing to download)
// and notifies where the browser allows, and sends the operator's acknowledge and handle.
// Also the print button of the rekap. No inline script: the page's CSP allows only 'self'.
"use strict";

(function () {
  const slot = document.getElementById("darurat");
  const printer = document.querySelector("[data-print]");
  if (printer) printer.addEventListener("click", () => window.print());
  if (!slot) return;

  const words = JSON.parse(document.getElementById("darurat-words").textContent);
  const silentBox = document.getElementById("senyap");
  const offline = document.getElementById("darurat-off");
  const enable = document.getElementById("alerts-on");
  const shown = new Map(); // "post#seq" -> its element in the banner
  const announced = new Set(); // keys already beeped and notified on this page
  let audio = null;
  let lastBeep = 0;

  function fill(text, values) {
    return text.replace(/\{(\w+)\}/g, (m, k) => (k in values ? String(values[k]) : m));
  }

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function beep() {
    if (!audio || audio.state !== "running") return;
    const now = audio.currentTime;
    [0, 0.35, 0.7].forEach((at) => {
      const tone = audio.createOscillator();
      const gain = audio.createGain();
      tone.frequency.value = 880;
      gain.gain.setValueAtTime(0.25, now + at);
      gain.gain.setValueAtTime(0, now + at + 0.22);
      tone.connect(gain).connect(audio.destination);
      tone.start(now + at);
      tone.stop(now + at + 0.25);
    });
    lastBeep = Date.now();
  }

  function notify(alarm) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    const where = [alarm.name, alarm.desa].filter(Boolean).join(" · ");
    new Notification(words.title, { body: where + " · " + alarm.local_time, tag: alarm.post + "#" + alarm.seq });
  }

  enable.hidden = false;
  enable.addEventListener("click", () => {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (Context && !audio) audio = new Context();
    if (audio) audio.resume();
    if ("Notification" in window && Notification.permission === "default") {
      Notification.requestPermission();
    }
    enable.hidden = true;
  });

  function post(url, fields) {
    const body = new URLSearchParams(fields);
    body.set("csrf_token", slot.dataset.csrf || "");
    return fetch(url, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRF-Token": slot.dataset.csrf || "" },
    }).then((answer) => {
      if (!answer.ok) throw new Error(String(answer.status));
      return poll();
    }).catch(() => window.alert(words.failed));
  }

  function build(alarm) {
    const box = el("div", "alarm");
    box.dataset.key = alarm.post + "#" + alarm.seq;
    const head = el("div", "alarm-head");
    head.append(el("strong", "alarm-title", words.title));
    head.append(el("span", "alarm-where"));
    head.append(el("span", "alarm-state"));
    box.append(head);
    const actions = el("div", "alarm-actions");
    const ack = el("button", "ack", words.acknowledge);
    ack.type = "button";
    ack.addEventListener("click", () => post(box.dataset.acknowledge, {}));
    const form = el("form", "handle");
    const note = el("input");
    note.name = "note";
    note.required = true;
    note.maxLength = 500;
    note.placeholder = words.note;
    note.setAttribute("aria-label", words.note);
    const done = el("button", "", words.handle);
    done.type = "submit";
    form.append(note, done);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      post(box.dataset.handle, { note: note.value });
    });
    const history = el("a", "alarm-history", words.history);
    actions.append(ack, form, history);
    box.append(actions);
    return box;
  }

  function update(box, alarm) {
    box.dataset.acknowledge = alarm.acknowledge;
    box.dataset.handle = alarm.handle;
    box.className = "alarm state-" + alarm.state;
    const where = [alarm.name, alarm.desa, alarm.local_time].filter(Boolean).join(" · ");
    box.querySelector(".alarm-where").textContent = where;
    const ack = alarm.acknowledged || {};
    box.querySelector(".alarm-state").textContent = fill(words[alarm.state] || "", {
      min: alarm.waiting_min,
      user: ack.user || "",
      time: ack.local_time || "",
    });
    box.querySelector(".ack").hidden = Boolean(alarm.acknowledged);
    box.querySelector(".handle").hidden = !alarm.acknowledged;
    box.querySelector(".alarm-history").href = alarm.history + "#darurat-history";
  }

  function show(report) {
    const keys = new Set();
    let escalated = false;
    for (const alarm of report.active) {
      const key = alarm.post + "#" + alarm.seq;
      keys.add(key);
      let box = shown.get(key);
      if (!box) {
        box = build(alarm);
        shown.set(key, box);
        slot.append(box);
      }
      update(box, alarm);
      escalated = escalated || alarm.state === "escalated";
      if (!announced.has(key)) {
        announced.add(key);
        beep();
        notify(alarm);
      }
    }
    for (const [key, box] of shown) {
      if (!keys.has(key)) {
        box.remove();
        shown.delete(key);
      }
    }
    if (escalated && Date.now() - lastBeep > 10000) beep(); // keep calling until answered
    slot.hidden = shown.size === 0;
    document.body.classList.toggle("has-darurat", shown.size > 0);
    const silent = report.silent.map((s) => s.name + " (" + fill(words.since, { since: s.since }) + ")");
    silentBox.textContent = silent.length ? words.silent + " " + silent.join(", ") : "";
    silentBox.hidden = silent.length === 0;
  }

  let polling = false;
  function poll() {
    if (polling) return Promise.resolve();
    polling = true;
    return fetch(slot.dataset.api, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((answer) => {
        if (!answer.ok) throw new Error(String(answer.status));
        return answer.json();
      })
      .then((report) => {
        offline.hidden = true;
        show(report);
      })
      .catch(() => {
        offline.hidden = false;
      })
      .finally(() => {
        polling = false;
      });
  }

  poll();
  window.setInterval(poll, 1000);
})();
