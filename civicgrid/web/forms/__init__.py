"""The forms of the pages, one module per area (``cases``: the case list's filters,
``case_actions``: one form per workflow action on the case page)."""
