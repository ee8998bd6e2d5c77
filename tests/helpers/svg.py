"""Reading a Graphviz SVG back: what a person would see drawn."""
import xml.etree.ElementTree as ET

SVG = "{http://www.w3.org/2000/svg}"


def svg_nodes(svg_text: str):
    """(node titles, cluster titles) of a Graphviz SVG."""
    root = ET.fromstring(svg_text)
    nodes, clusters = [], []
    for g in root.iter(f"{SVG}g"):
        title = g.find(f"{SVG}title")
        if g.get("class") == "node":
            nodes.append(title.text)
        elif g.get("class") == "cluster":
            clusters.append(title.text)
    return nodes, clusters
