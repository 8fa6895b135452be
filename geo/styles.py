"""QGIS styles of the result layers, stored in the GeoPackage's ``layer_styles`` table.

QGIS (and its GeoPackage provider) reads a table ``layer_styles`` with one row per style:
``f_table_name`` / ``f_geometry_column`` name the layer, ``styleQML`` holds the QGIS style,
``styleSLD`` the same in OGC SLD 1.1 (for other clients), and ``useAsDefault`` makes QGIS apply
it when the layer is opened. So a planner who drags ``results.gpkg`` onto QGIS sees the sites
coloured kept / lost / gained and the flows drawn with a width by patients per year.

The table is registered in ``gpkg_contents`` as an attributes table (GeoPackage 1.2), and every
value is fixed (no timestamps of the moment of writing): the same results give the same bytes.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

#: colours (R, G, B) of a site's status for a treatment, as in the maps (geo/maps.py)
STATUS_COLOURS: dict[str, tuple[int, int, int]] = {
    "kept": (33, 113, 181),      # blue
    "gained": (35, 139, 69),     # green
    "lost": (203, 24, 29),       # red
    "not provided": (170, 170, 170),
}
#: colours of the hospital-to-hospital flows by kind of move
MOVE_COLOURS: dict[str, tuple[int, int, int]] = {
    "displaced": (203, 24, 29),        # the hospital of today stops the treatment
    "moved_optional": (117, 107, 177),  # moved although it keeps the treatment
}
#: line widths in millimetres: thinnest and thickest flow (the largest of the layer)
MIN_WIDTH_MM, MAX_WIDTH_MM = 0.3, 4.0
#: fixed stand-in for the time of writing (reproducible files)
FIXED_TIME = "2000-01-01T00:00:00.000Z"
#: the geometry column GDAL gives GeoPackage layers
GEOMETRY_COLUMN = "geom"
#: the site's status for its treatment from the sites layer's flags
SITE_STATUS_EXPRESSION = ("CASE WHEN \"lost\" THEN 'lost' WHEN \"gained\" THEN 'gained' "
                          "WHEN \"kept_after\" THEN 'kept' ELSE 'not provided' END")
#: area fill classes of extra minutes per patient: (lower, upper, label, colour)
EXTRA_MIN_CLASSES: tuple[tuple[float, float, str, tuple[int, int, int]], ...] = (
    (-1e9, -0.05, "shorter than today", (198, 219, 239)),
    (-0.05, 0.05, "as today", (247, 247, 247)),
    (0.05, 10.0, "up to 10 min longer", (254, 217, 118)),
    (10.0, 20.0, "10-20 min longer", (253, 141, 60)),
    (20.0, 1e9, "over 20 min longer", (189, 0, 38)),
)

_HEADER = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"


@dataclass(frozen=True)
class LayerStyle:
    """One row of ``layer_styles``."""

    layer: str
    name: str
    description: str
    qml: str
    sld: str


def _rgba(colour: tuple[int, int, int], alpha: int = 255) -> str:
    return f"{colour[0]},{colour[1]},{colour[2]},{alpha}"


def _hex(colour: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*colour)


def _options(values: dict[str, str]) -> str:
    return "".join(f'<Option name="{k}" type="QString" value={quoteattr(v)}/>'
                   for k, v in values.items())


def _width_property(expression: str) -> str:
    """A data-defined stroke width (QGIS property ``outlineWidth``) from an expression."""
    return ('<data_defined_properties><Option type="Map"><Option name="name" type="QString" '
            'value=""/><Option name="properties" type="Map"><Option name="outlineWidth" '
            'type="Map"><Option name="active" type="bool" value="true"/>'
            f'<Option name="expression" type="QString" value={quoteattr(expression)}/>'
            '<Option name="type" type="int" value="3"/></Option></Option>'
            '<Option name="type" type="QString" value="collection"/></Option>'
            '</data_defined_properties>')


def _marker(index: int, colour: tuple[int, int, int], size: float) -> str:
    return (f'<symbol type="marker" name="{index}" alpha="1" clip_to_extent="1" force_rhr="0">'
            '<layer class="SimpleMarker" enabled="1" pass="0" locked="0"><Option type="Map">'
            + _options({"name": "circle", "color": _rgba(colour), "size": f"{size:g}",
                        "size_unit": "MM", "outline_color": "255,255,255,255",
                        "outline_width": "0.2"})
            + "</Option></layer></symbol>")


def _line(index: int, colour: tuple[int, int, int], width_expression: str | None,
          alpha: int = 200) -> str:
    return (f'<symbol type="line" name="{index}" alpha="1" clip_to_extent="1" force_rhr="0">'
            '<layer class="SimpleLine" enabled="1" pass="0" locked="0"><Option type="Map">'
            + _options({"line_color": _rgba(colour, alpha), "line_width": f"{MIN_WIDTH_MM:g}",
                        "line_width_unit": "MM", "capstyle": "round"})
            + "</Option>" + (_width_property(width_expression) if width_expression else "")
            + "</layer></symbol>")


def _fill(index: int, colour: tuple[int, int, int]) -> str:
    return (f'<symbol type="fill" name="{index}" alpha="0.85" clip_to_extent="1" '
            'force_rhr="0"><layer class="SimpleFill" enabled="1" pass="0" locked="0">'
            '<Option type="Map">'
            + _options({"color": _rgba(colour), "outline_color": "120,120,120,255",
                        "outline_width": "0.1", "style": "solid"})
            + "</Option></layer></symbol>")


def _categorized(attr: str, categories: list[tuple[str, str]], symbols: list[str]) -> str:
    cats = "".join(f'<category symbol="{i}" value={quoteattr(value)} label={quoteattr(label)} '
                   'render="true"/>' for i, (value, label) in enumerate(categories))
    return (f'<renderer-v2 type="categorizedSymbol" attr={quoteattr(attr)} symbollevels="0" '
            f'enableorderby="0" forceraster="0"><categories>{cats}</categories>'
            f'<symbols>{"".join(symbols)}</symbols></renderer-v2>')


def _qml(renderer: str) -> str:
    return (_HEADER + '<qgis version="3.28.0" styleCategories="Symbology">' + renderer
            + "</qgis>\n")


def width_expression(max_patients: float) -> str:
    """Line width in mm: MIN_WIDTH_MM .. MAX_WIDTH_MM linear in patients per year."""
    return (f'scale_linear("patients", 0, {max_patients:.6g}, {MIN_WIDTH_MM:g}, '
            f"{MAX_WIDTH_MM:g})")


def _sld(layer: str, rules: list[str]) -> str:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<StyledLayerDescriptor version="1.1.0" '
            'xmlns="http://www.opengis.net/sld" xmlns:se="http://www.opengis.net/se" '
            'xmlns:ogc="http://www.opengis.net/ogc" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            f"<NamedLayer><se:Name>{escape(layer)}</se:Name><UserStyle>"
            f"<se:Name>{escape(layer)}</se:Name><se:FeatureTypeStyle>{''.join(rules)}"
            "</se:FeatureTypeStyle></UserStyle></NamedLayer></StyledLayerDescriptor>\n")


def _is_true(column: str) -> str:
    return (f"<ogc:PropertyIsEqualTo><ogc:PropertyName>{column}</ogc:PropertyName>"
            "<ogc:Literal>1</ogc:Literal></ogc:PropertyIsEqualTo>")


def _equals(column: str, value: str) -> str:
    return (f"<ogc:PropertyIsEqualTo><ogc:PropertyName>{column}</ogc:PropertyName>"
            f"<ogc:Literal>{escape(value)}</ogc:Literal></ogc:PropertyIsEqualTo>")


def _sld_rule(name: str, condition: str | None, symbolizer: str) -> str:
    where = f"<ogc:Filter>{condition}</ogc:Filter>" if condition else "<se:ElseFilter/>"
    return f"<se:Rule><se:Name>{escape(name)}</se:Name>{where}{symbolizer}</se:Rule>"


def _sld_point(colour: tuple[int, int, int], size: int) -> str:
    return ("<se:PointSymbolizer><se:Graphic><se:Mark><se:WellKnownName>circle"
            f'</se:WellKnownName><se:Fill><se:SvgParameter name="fill">{_hex(colour)}'
            "</se:SvgParameter></se:Fill></se:Mark>"
            f"<se:Size>{size}</se:Size></se:Graphic></se:PointSymbolizer>")


def _sld_line(colour: tuple[int, int, int], max_patients: float | None) -> str:
    if max_patients is None:
        width = "1"
    else:  # width by patients: 1 px + up to 12 px at the layer's largest flow
        width = ('<ogc:Add><ogc:Literal>1</ogc:Literal><ogc:Mul><ogc:PropertyName>patients'
                 f"</ogc:PropertyName><ogc:Literal>{12.0 / max_patients:.6g}</ogc:Literal>"
                 "</ogc:Mul></ogc:Add>")
    return ('<se:LineSymbolizer><se:Stroke><se:SvgParameter name="stroke">'
            f'{_hex(colour)}</se:SvgParameter><se:SvgParameter name="stroke-width">{width}'
            "</se:SvgParameter></se:Stroke></se:LineSymbolizer>")


def _sld_polygon(colour: tuple[int, int, int]) -> str:
    return ('<se:PolygonSymbolizer><se:Fill><se:SvgParameter name="fill">'
            f"{_hex(colour)}</se:SvgParameter></se:Fill></se:PolygonSymbolizer>")


def sites_style() -> LayerStyle:
    """Sites: kept blue, gained green, lost red, not provided small grey."""
    names = list(STATUS_COLOURS)
    symbols = [_marker(i, STATUS_COLOURS[n], 2.0 if n == "not provided" else 3.6)
               for i, n in enumerate(names)]
    qml = _qml(_categorized(SITE_STATUS_EXPRESSION, [(n, n) for n in names], symbols))
    rules = [_sld_rule("lost", _is_true("lost"), _sld_point(STATUS_COLOURS["lost"], 12)),
             _sld_rule("gained", _is_true("gained"), _sld_point(STATUS_COLOURS["gained"], 12)),
             _sld_rule("kept", _is_true("kept_after"), _sld_point(STATUS_COLOURS["kept"], 12)),
             _sld_rule("not provided", None, _sld_point(STATUS_COLOURS["not provided"], 6))]
    return LayerStyle("sites", "herschik sites", "kept / gained / lost per treatment", qml,
                      _sld("sites", rules))


def hospital_flows_style(max_patients: float) -> LayerStyle:
    """Hospital to hospital: red displaced, purple optional; width by patients per year."""
    width = width_expression(max_patients)
    symbols = [_line(i, MOVE_COLOURS[m], width) for i, m in enumerate(MOVE_COLOURS)]
    labels = {"displaced": "displaced (hospital stops)",
              "moved_optional": "moved although the hospital keeps it"}
    qml = _qml(_categorized("move", [(m, labels[m]) for m in MOVE_COLOURS], symbols))
    rules = [_sld_rule(labels[m], _equals("move", m), _sld_line(MOVE_COLOURS[m], max_patients))
             for m in MOVE_COLOURS]
    return LayerStyle("hospital_flows", "herschik hospital flows",
                      "patients from the hospital of today to the hospital after; width: "
                      "patients per year", qml, _sld("hospital_flows", rules))


def flows_style(max_patients: float) -> LayerStyle:
    """Area to hospital: thin blue-grey lines, width by patients per year."""
    colour = (66, 146, 198)
    renderer = ('<renderer-v2 type="singleSymbol" symbollevels="0" enableorderby="0" '
                f'forceraster="0"><symbols>{_line(0, colour, width_expression(max_patients), 120)}'
                "</symbols></renderer-v2>")
    return LayerStyle("flows", "herschik flows", "patients of an area to their hospital; width: "
                      "patients per year", _qml(renderer),
                      _sld("flows", [_sld_rule("flows", None, _sld_line(colour, max_patients))]))


def areas_style() -> LayerStyle:
    """Areas: graduated by extra minutes per patient (blue shorter, yellow to red longer)."""
    ranges = "".join(f'<range symbol="{i}" lower="{lo:g}" upper="{hi:g}" label={quoteattr(label)} '
                     'render="true"/>' for i, (lo, hi, label, _) in enumerate(EXTRA_MIN_CLASSES))
    symbols = "".join(_fill(i, c) for i, (_, _, _, c) in enumerate(EXTRA_MIN_CLASSES))
    renderer = ('<renderer-v2 type="graduatedSymbol" attr="extra_min" '
                'graduatedMethod="GraduatedColor" symbollevels="0" enableorderby="0" '
                f'forceraster="0"><ranges>{ranges}</ranges>'
                f"<symbols>{symbols}</symbols></renderer-v2>")
    rules = [_sld_rule(label, "<ogc:And><ogc:PropertyIsGreaterThan><ogc:PropertyName>extra_min"
                       f"</ogc:PropertyName><ogc:Literal>{lo:g}</ogc:Literal>"
                       "</ogc:PropertyIsGreaterThan><ogc:PropertyIsLessThanOrEqualTo>"
                       f"<ogc:PropertyName>extra_min</ogc:PropertyName><ogc:Literal>{hi:g}"
                       "</ogc:Literal></ogc:PropertyIsLessThanOrEqualTo></ogc:And>",
                       _sld_polygon(c)) for lo, hi, label, c in EXTRA_MIN_CLASSES]
    return LayerStyle("areas", "herschik areas", "extra minutes per patient", _qml(renderer),
                      _sld("areas", rules))


def result_styles(max_patients: dict[str, float]) -> list[LayerStyle]:
    """The styles of the result layers present in ``max_patients`` (layer -> largest
    ``patients`` of the layer, which sets the widest line)."""
    makers = {"sites": lambda m: sites_style(), "areas": lambda m: areas_style(),
              "flows": flows_style, "hospital_flows": hospital_flows_style}
    return [makers[layer](max_patients[layer]) for layer in makers if layer in max_patients]


_CREATE = """CREATE TABLE IF NOT EXISTS layer_styles (
  id INTEGER PRIMARY KEY AUTOINCREMENT, f_table_catalog TEXT(256), f_table_schema TEXT(256),
  f_table_name TEXT(256), f_geometry_column TEXT(256), styleName TEXT(30), styleQML TEXT,
  styleSLD TEXT, useAsDefault BOOLEAN, description TEXT, owner TEXT(30), ui TEXT(30),
  update_time DATETIME DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))"""


def write_layer_styles(gpkg: str | Path, max_patients: dict[str, float]) -> None:
    """Add ``layer_styles`` (one default style per result layer) to a GeoPackage."""
    styles = result_styles(max_patients)
    with sqlite3.connect(str(gpkg)) as db:
        # a temporary file, fsynced once by its writer before it is moved into place
        db.execute("PRAGMA synchronous = OFF")
        db.execute(_CREATE)
        db.execute("DELETE FROM layer_styles")
        for style in styles:
            db.execute(
                "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, "
                "f_geometry_column, styleName, styleQML, styleSLD, useAsDefault, description, "
                "owner, ui, update_time) VALUES ('', '', ?, ?, ?, ?, ?, 1, ?, '', NULL, ?)",
                (style.layer, GEOMETRY_COLUMN, style.name, style.qml, style.sld,
                 style.description, FIXED_TIME))
        db.execute("DELETE FROM gpkg_contents WHERE table_name = 'layer_styles'")
        db.execute("INSERT INTO gpkg_contents (table_name, data_type, identifier, description, "
                   "last_change) VALUES ('layer_styles', 'attributes', 'layer_styles', "
                   "'QGIS layer styles', ?)", (FIXED_TIME,))
    db.close()
