"""Answers to the exercises of README.org that change code: one file per answer, run from the repository root
as `python -m exercises.<file name without .py>`. Each imports its lesson and changes only what the exercise asks.
"""
