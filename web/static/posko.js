// The guard's screen: live updates (server-sent events, polling as a fallback), the
// on-screen buttons, Darurat's long press, re-check countdowns, and the print button.
// Every word shown comes from the page (data-* attributes), never from this file.
(function () {
  "use strict";

  var POLL_MS = 2000;
  var TOAST_MS = 4000;
  var LEAVING_URL = "/visitors/leaving";  // the picker of Keluar Pendatang
  var ALARM_POLL_MS = 3000;  // an alarm screen also waits for things that store no event

  function countdowns(scope) {
    var started = Date.now();
    var items = scope.querySelectorAll("[data-left]");
    if (!items.length) return;
    function tick() {
      var gone = Math.floor((Date.now() - started) / 1000);
      items.forEach(function (item) {
        var left = parseInt(item.dataset.left, 10) - gone;
        if (left <= 0) {
          item.textContent = item.dataset.done;
          item.classList.add("due");
          var row = item.closest(".wait");
          var button = row && row.querySelector("button[data-turn='1']");
          if (button) button.disabled = false;
        } else {
          var b = item.querySelector(".left");
          if (b) b.textContent = Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
        }
      });
    }
    tick();
    return setInterval(tick, 1000);
  }

  function live(root) {
    var panel = document.getElementById("panel");
    var toast = document.getElementById("toast");
    var csrf = root.dataset.csrf;
    var loading = false, again = false, poller = null, holding = false, alarmPoller = null;
    var ticking = countdowns(panel);

    function refresh() {
      if (loading || holding) { again = true; return; }  // never replace a button being held
      loading = true;
      fetch(root.dataset.panelUrl, {cache: "no-store", credentials: "same-origin"})
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) {
          panel.innerHTML = html;  // rendered and escaped by the server
          if (ticking) clearInterval(ticking);
          ticking = countdowns(panel);
          bindForms(panel);
          bindHolds(panel);
          alarmPoll();
        })
        .catch(function () {})
        .then(function () {
          loading = false;
          if (again) { again = false; refresh(); }
        });
    }

    // While an alarm covers the screen, look again often: the district's answer and the
    // store coming back change the screen without a new event.
    function alarmPoll() {
      var on = !!panel.querySelector("[data-alarm]");
      if (on && !alarmPoller) alarmPoller = setInterval(refresh, ALARM_POLL_MS);
      if (!on && alarmPoller) { clearInterval(alarmPoller); alarmPoller = null; }
    }

    function poll(on) {
      if (on && !poller) poller = setInterval(refresh, POLL_MS);
      if (!on && poller) { clearInterval(poller); poller = null; }
    }

    function listen() {
      if (!window.EventSource) { poll(true); return; }
      var source = new EventSource(root.dataset.streamUrl);
      source.addEventListener("hello", function () { poll(false); refresh(); });
      source.addEventListener("update", refresh);
      source.onerror = function () { poll(true); };  // the browser may reconnect; poll meanwhile
    }

    function show(answer) {
      toast.textContent = answer.message || root.dataset.error;
      toast.className = "toast toast-" + (answer.pattern || "busy");
      toast.hidden = false;
      clearTimeout(show.timer);
      show.timer = setTimeout(function () { toast.hidden = true; }, TOAST_MS);
    }

    function send(form) {
      return fetch(form.action, {
        method: "POST", body: new FormData(form), credentials: "same-origin",
        headers: {"X-CSRF-Token": csrf, "Accept": "application/json"}
      }).then(function (r) { return r.json(); })
        .then(show, function () { show({pattern: "busy"}); })
        .then(refresh);
    }

    function bindForms(scope) {
      scope.querySelectorAll("form.press:not(.hold)").forEach(function (form) {
        form.addEventListener("submit", function (e) {
          e.preventDefault();
          if (form.querySelector("[data-button=keluar_pendatang]")) pick(form);
          else send(form);
        });
      });
    }

    // Keluar Pendatang on the screen: the guard picks who leaves from those inside (the
    // server's picker page); with nobody inside it is a plain press.
    function pick(form) {
      fetch(LEAVING_URL, {cache: "no-store", credentials: "same-origin"})
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) {
          var found = new DOMParser().parseFromString(html, "text/html").getElementById("leaving");
          if (!found || !found.querySelector("form.press")) { send(form); return; }
          var layer = document.createElement("div");
          layer.className = "picker";
          layer.appendChild(document.importNode(found, true));
          document.body.appendChild(layer);
          function close() { layer.remove(); }
          layer.querySelector("[data-close]").addEventListener("click", function (e) {
            e.preventDefault();
            close();
          });
          layer.querySelectorAll("form.press").forEach(function (choice) {
            choice.addEventListener("submit", function (e) {
              e.preventDefault();
              close();
              send(choice);
            });
          });
        })
        .catch(function () { send(form); });
    }

    function hold(link, form, ms) {
      var timer = null, fired = false;
      function start(e) {
        e.preventDefault();
        fired = false;
        holding = true;
        link.classList.add("holding");
        link.querySelector(".fill").style.transitionDuration = ms + "ms";
        timer = setTimeout(function () {
          fired = true;
          stop();
          send(form);
        }, ms);
      }
      function stop() {
        clearTimeout(timer);
        link.classList.remove("holding");
        if (holding) {
          holding = false;
          if (again) { again = false; refresh(); }
        }
      }
      link.addEventListener("pointerdown", start);
      ["pointerup", "pointerleave", "pointercancel"].forEach(function (name) {
        link.addEventListener(name, stop);
      });
      link.addEventListener("contextmenu", function (e) { e.preventDefault(); });
      link.addEventListener("click", function (e) {
        e.preventDefault();
        if (!fired) show({pattern: "denied", message: link.dataset.hint});
      });
    }

    function bindHolds(scope) {
      var handled = scope.querySelector("#handled");
      if (handled) {
        hold(handled, document.getElementById("handled-form"),
             parseFloat(handled.dataset.holdS) * 1000);
      }
    }

    bindForms(document);
    var darurat = document.getElementById("darurat");
    if (darurat) {
      hold(darurat, document.getElementById("darurat-form"), parseFloat(root.dataset.holdS) * 1000);
    }
    bindHolds(panel);
    alarmPoll();
    listen();
  }

  var root = document.getElementById("live");
  if (root) live(root);
  else countdowns(document);
  // The clock page sends this device's time, read at the moment the form is sent.
  document.querySelectorAll("form[data-device-clock]").forEach(function (form) {
    form.addEventListener("submit", function () {
      form.elements.device_ms.value = String(Date.now());
    });
  });
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () { window.print(); });
  });
})();
