"""custlib: the helper library behind the Customer Insights Workbook notebooks.

Kept import-light on purpose: each notebook imports only the modules it uses.
"""

__version__ = "0.1.0"
