extension FleetPage {
    /// `GET /ui/fleet.js`: live updates and actions.
    ///
    /// Live: an `EventSource` on `/v1/events`; each `fleet` event is a JSON object of section id → HTML, which
    /// replaces that section's contents (the browser reconnects by itself). Actions: a button with `data-method`
    /// and `data-path` sends the JSON of its `data-form` (fields named as the API's keys; `data-times` names the
    /// fields given as local date and time, sent as seconds since 1970) with `Authorization: Bearer` and the token
    /// typed in `#token` (kept for the browser tab only). The outcome goes to `#action-result`, whose
    /// `data-status` is the HTTP status.
    static let script = #"""
        "use strict";
        (() => {
          const tokenInput = document.getElementById("token");
          tokenInput.value = sessionStorage.getItem("tandem-token") || "";
          tokenInput.addEventListener("change", () => sessionStorage.setItem("tandem-token", tokenInput.value));
          const filter = document.getElementById("device-filter");
          const applyFilter = () => {
            const words = filter.value.toLowerCase().split(/\s+/).filter(w => w);
            for (const row of document.querySelectorAll("#devices tr")) {
              const text = row.textContent.toLowerCase();
              row.hidden = !words.every(w => text.includes(w));
            }
          };
          filter.addEventListener("input", applyFilter);
          const events = new EventSource("/v1/events");
          events.addEventListener("fleet", event => {
            const sections = JSON.parse(event.data);
            for (const [id, html] of Object.entries(sections)) {
              const element = document.getElementById(id);
              if (element) element.innerHTML = html;
            }
            applyFilter();
            document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
          });
          const result = document.getElementById("action-result");
          const report = (status, text) => {
            result.dataset.status = String(status);
            result.className = status >= 200 && status < 300 ? "ok" : "error";
            result.textContent = text;
          };
          document.addEventListener("click", async event => {
            const button = event.target.closest("button[data-method]");
            if (!button) return;
            const body = {};
            const form = button.dataset.form && document.getElementById(button.dataset.form);
            if (form) {
              const times = (form.dataset.times || "").split(" ").filter(t => t);
              for (const [name, value] of new FormData(form)) {
                if (value === "") continue;
                body[name] = times.includes(name) ? new Date(value).getTime() / 1000 : value;
              }
            }
            const verb = button.textContent.trim();
            if (button.classList.contains("danger") && !confirm(`${verb}?`)) return;
            report(0, `${verb}…`);
            try {
              const response = await fetch(button.dataset.path, {
                method: button.dataset.method,
                headers: { "Content-Type": "application/json", "Authorization": `Bearer ${tokenInput.value}` },
                body: JSON.stringify(body),
              });
              const text = await response.text();
              let message = text;
              try {
                const json = JSON.parse(text);
                message = json.reason || json.error || text;
              } catch (_) {}
              report(response.status, `${verb}: ${response.status} ${message}`);
            } catch (error) {
              report(-1, `${verb}: ${error}`);
            }
          });
        })();
        """#

    /// `GET /ui/fleet.css`.
    static let stylesheet = """
        body { font: 14px/1.4 system-ui, sans-serif; margin: 1rem 2rem; color: #1d232a; background: #fafbfc; }
        header { display: flex; gap: 2rem; align-items: baseline; flex-wrap: wrap; }
        h1 { font-size: 1.4rem; margin: 0; } h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; }
        h3 { font-size: .95rem; margin: .8rem 0 .3rem; }
        table { border-collapse: collapse; width: 100%; background: #fff; }
        th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid #e3e6ea; vertical-align: middle; }
        th { font-weight: 600; background: #f0f2f5; position: sticky; top: 0; }
        code { font-size: .85em; }
        .state { padding: 0 .4rem; border-radius: .6rem; font-size: .8rem; }
        .state.online { background: #d8f5dd; color: #17622a; } .state.offline { background: #f3d9d9; color: #8a1f1f; }
        tr.offline td { color: #6b7480; }
        .rejected, .failed, .problem, .error { color: #a12020; } .passed, .ok { color: #17622a; }
        .spark polyline { fill: none; stroke: #3867d6; stroke-width: 1.2; }
        .note { color: #5b6572; font-size: .85rem; }
        .action-form { margin-top: .5rem; display: flex; gap: .4rem; align-items: center; flex-wrap: wrap; }
        .action-form h3 { width: 100%; } form.inline { display: inline; }
        button { cursor: pointer; } button.danger { color: #a12020; }
        #action-result { min-height: 1.2rem; font-weight: 600; }
        #device-filter { margin-bottom: .4rem; width: 20rem; }
        """
}
