"""What a person reads: the report (a Jinja2 template), its tables, figures and verdict sentences."""
