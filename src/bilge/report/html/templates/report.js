/* bilge report: draws each host's treemap and tables from its JSON data block.
   Text from the data only ever goes through textContent, setAttribute of plain
   attributes, or title: never through markup, so a name cannot become HTML. */
(function () {
  "use strict";
  var VERDICTS = ["will be removed", "kept", "protected data", "goes with a removed container", "not planned"];
  var CLASSES = ["v-remove", "v-keep", "v-protect", "v-along", "v-none"];
  var PAGE = 500;

  function size(n) {
    var units = ["B", "kB", "MB", "GB", "TB"], value = Math.abs(n), unit = 0;
    while (value >= 999.5 && unit < units.length - 1) { value /= 1000; unit += 1; }
    var text = unit === 0 ? String(Math.round(value)) : value.toFixed(1);
    return (n < 0 ? "-" : "") + text + " " + units[unit];
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function decode(data) {
    return data.items.map(function (r, n) {
      return {
        kind: data.kinds[r[0]], name: r[1], bytes: r[2], verdict: r[3], reason: data.strings[r[4]],
        x: r[5], y: r[6], w: r[7], h: r[8], plan: r.length > 9 ? r[9] : r[2],
        labels: (data.labels[String(n)] || []).map(function (s) { return data.strings[s]; })
      };
    });
  }

  // Coordinates are ten-thousandths of the treemap's width and height.
  function place(node, x, y, w, h) {
    node.style.left = (x / 100) + "%";
    node.style.top = (y / 100) + "%";
    node.style.width = (w / 100) + "%";
    node.style.height = (h / 100) + "%";
  }

  function showDetails(panel, item) {
    panel.textContent = "";
    var dl = el("dl");
    var rows = [["Name", item.name], ["Kind", item.kind], ["Size on disk", size(item.bytes)],
      ["Policy", VERDICTS[item.verdict]], ["Reason", item.reason]];
    if (item.plan !== item.bytes) { rows.push(["Plan frees", size(item.plan)]); }
    if (item.labels.length) { rows.push(["Labels", item.labels.join("\n")]); }
    rows.forEach(function (row) {
      dl.appendChild(el("dt", "", row[0]));
      dl.appendChild(el("dd", "", row[1]));
    });
    panel.appendChild(dl);
  }

  function makeBox(item, select) {
    var box = el("div", "box " + CLASSES[item.verdict], item.name);
    box.appendChild(el("span", "size", size(item.bytes)));
    box.tabIndex = 0;
    box.setAttribute("role", "button");
    box.setAttribute("aria-label", item.kind + " " + item.name + ", " + size(item.bytes) + ", " + VERDICTS[item.verdict] + ": " + item.reason);
    box.title = item.name + "\n" + size(item.bytes) + " · " + VERDICTS[item.verdict] + "\n" + item.reason;
    box.dataset.bytes = String(item.bytes);
    box.dataset.name = item.name;
    box.dataset.kind = item.kind;
    box.addEventListener("click", function () { select(box, item); });
    box.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); select(box, item); }
    });
    return box;
  }

  // Docker's objects fill the map; with what is outside Docker shown too, they are
  // shrunk by data.scale into the top-left corner (their area is then their share
  // of the used bytes) and outside Docker is the rest: two boxes, right and below.
  function drawTreemap(root, data, items, panel, toggle) {
    var selected = null, placed = [], outside = [];
    function select(box, item) {
      if (selected) { selected.classList.remove("selected"); }
      selected = box;
      box.classList.add("selected");
      showDetails(panel, item);
    }
    items.forEach(function (item) {
      if (item.kind === "outside-docker") {
        [0, 1].forEach(function (part) {
          var box = makeBox(item, select);
          box.dataset.part = String(part);
          outside.push(box);
          root.appendChild(box);
        });
      } else if (item.x >= 0 && item.w > 0 && item.h > 0) {
        var box = makeBox(item, select);
        root.appendChild(box);
        placed.push([box, item.x, item.y, item.w, item.h]);
      }
    });
    data.groups.forEach(function (g) {
      if (g[4] <= 0 || g[5] <= 0) { return; }
      var frame = el("div", "group");
      frame.appendChild(el("span", "", g[0] + " " + size(g[1])));
      root.appendChild(frame);
      placed.push([frame, g[2], g[3], g[4], g[5]]);
    });
    function layout() {
      var k = toggle.checked ? 1 : data.scale, edge = Math.round(data.scale * 10000);
      placed.forEach(function (p) { place(p[0], p[1] * k, p[2] * k, p[3] * k, p[4] * k); });
      outside.forEach(function (box, part) {
        box.hidden = toggle.checked;
        if (part === 0) { place(box, edge, 0, 10000 - edge, 10000); }
        else { place(box, 0, edge, edge, 10000 - edge); }
      });
    }
    var inside = 0;
    data.groups.slice(0, -1).forEach(function (g) { inside += g[1]; });
    toggle.closest("p").hidden = !outside.length || !inside;
    toggle.checked = outside.length > 0 && inside > 0 && data.scale < 0.5;  // else slivers
    toggle.addEventListener("change", layout);
    layout();
  }

  var COLUMNS = [
    { title: "Kind", key: function (i) { return i.kind; } },
    { title: "Name", key: function (i) { return i.name.toLowerCase(); } },
    { title: "Size", key: function (i) { return i.plan; }, num: true },
    { title: "Policy", key: function (i) { return i.verdict; } },
    { title: "Reason", key: function (i) { return i.reason.toLowerCase(); } }
  ];

  function tableRow(i) {
    var tr = el("tr");
    tr.appendChild(el("td", "", i.kind));
    tr.appendChild(el("td", "", i.name));
    tr.appendChild(el("td", "num", size(i.plan)));
    var verdict = el("td", "verdict");
    verdict.appendChild(el("span", CLASSES[i.verdict]));
    verdict.appendChild(document.createTextNode(VERDICTS[i.verdict]));
    tr.appendChild(verdict);
    tr.appendChild(el("td", "", i.reason));
    return tr;
  }

  function tableHead(state, render) {
    var head = el("tr");
    COLUMNS.forEach(function (column, n) {
      var th = el("th", column.num ? "num" : "");
      th.scope = "col";
      var button = el("button", "", column.title);
      button.type = "button";
      button.addEventListener("click", function () {
        state.descending = state.column === n ? !state.descending : !!column.num;
        state.column = n;
        render();
      });
      th.appendChild(button);
      head.appendChild(th);
    });
    return head;
  }

  function matching(rows, state) {
    var key = COLUMNS[state.column].key, sign = state.descending ? -1 : 1;
    var found = rows.filter(function (i) {
      return !state.filter || (i.kind + " " + i.name + " " + i.reason).toLowerCase().indexOf(state.filter) >= 0;
    });
    return found.sort(function (a, b) { var ka = key(a), kb = key(b); return ka < kb ? -sign : ka > kb ? sign : 0; });
  }

  function drawTable(holder, rows, label) {
    if (!rows.length) { holder.appendChild(el("p", "", "Nothing.")); return; }
    var state = { column: 2, descending: true, filter: "", shown: PAGE };  // by size, largest first
    var controls = el("div", "controls"), input = el("input"), count = el("span", "count");
    input.type = "search";
    input.placeholder = "Filter by kind, name or reason";
    input.setAttribute("aria-label", "Filter " + label);
    controls.appendChild(input);
    controls.appendChild(count);
    var table = el("table"), thead = el("thead"), body = el("tbody"), more = el("button", "more");
    table.setAttribute("aria-label", label);
    more.type = "button";
    var head = tableHead(state, render);
    thead.appendChild(head);
    table.appendChild(thead);
    table.appendChild(body);
    [controls, table, more].forEach(function (node) { holder.appendChild(node); });
    input.addEventListener("input", function () { state.filter = input.value.toLowerCase(); state.shown = PAGE; render(); });
    more.addEventListener("click", function () { state.shown = Infinity; render(); });

    function render() {
      var found = matching(rows, state), total = 0;
      Array.prototype.forEach.call(head.children, function (th, n) {
        if (n === state.column) { th.setAttribute("aria-sort", state.descending ? "descending" : "ascending"); }
        else { th.removeAttribute("aria-sort"); }
      });
      body.textContent = "";
      found.forEach(function (i) { total += i.plan; });
      found.slice(0, state.shown).forEach(function (i) { body.appendChild(tableRow(i)); });
      count.textContent = found.length + " of " + rows.length + " objects, " + size(total) +
        (found.length > state.shown ? "; the first " + state.shown + " shown" : "");
      more.hidden = found.length <= state.shown;
      more.textContent = "Show all " + found.length;
    }
    render();
  }

  // Printed, the evidence of every finding shows: a closed <details> prints closed.
  window.addEventListener("beforeprint", function () {
    document.querySelectorAll("details").forEach(function (d) { d.open = true; });
  });

  document.querySelectorAll("section.host").forEach(function (section) {
    var block = document.getElementById("data-" + section.dataset.index);
    if (!block) { return; }
    var data = JSON.parse(block.textContent);
    var items = decode(data);
    drawTreemap(section.querySelector(".treemap"), data, items, section.querySelector(".details"),
      section.querySelector(".docker-only"));
    drawTable(section.querySelector('[data-table="plan"]'), items.filter(function (i) { return i.verdict === 0; }), "The plan");
    drawTable(section.querySelector('[data-table="kept"]'), items.filter(function (i) { return i.verdict === 1 || i.verdict === 2; }), "Kept objects");
  });
}());
