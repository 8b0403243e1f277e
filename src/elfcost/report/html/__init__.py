"""JSON documents → one self-contained HTML report: page maps, charts and sortable tables.

The report is read offline and attached to CI runs, so everything is inline: CSS, a little
JavaScript (report.css and report.js here, read as package data), and SVG drawn here (no chart
library, no fonts, no network). It works on the document Structs, not on the model, so a report
can be made from saved JSON (`elfcost.estimate/3`, `elfcost.comparison/2`, `elfcost.scan/4`)
as well as from a live estimate; every figure it computes comes from elfcost.analysis, as the
text report's do. Causes are lettered, filled and explained as cost/causes.py says, as
`explain` does.

Every string that comes from a document is escaped with `html.escape` (paths can hold anything)
and no document text ever reaches the script: the script only reads attributes it finds in the
page, so a hostile path cannot break out of a `<script>` element.

page.py makes the documents and their sections; pagemaps.py, charts.py and tables.py draw the
parts; common.py holds the escaping and size words they share.
"""

from elfcost.report.html.common import size_text
from elfcost.report.html.page import estimate_html, scan_html

__all__ = ["estimate_html", "scan_html", "size_text"]
