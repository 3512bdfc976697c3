"""The dashboard: server-rendered pages under /ui over the facade, for business, risk and operations people.

Pages are Jinja2 templates fed by one facade call or a few; actions are HTML forms posted back here, which call
one facade method and redirect (so a reload never repeats an action). Every asset is served locally (Plotly's
JavaScript from its Python package): the dashboard works offline.
"""
