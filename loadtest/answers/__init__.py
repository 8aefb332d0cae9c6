"""``make answers``: the README's short answers, each drawn from one fixed, reproducible run.

``questions`` (what is run and which picture answers which question), ``probe`` (the browser
question, in a headless Chromium), ``main`` (flags, the run, the pictures and the page).
The page and what it shows: docs/answers.md.
"""
