"""The build-script gate, `elfcost check`: budgets, waivers and baselines decide (gate.py),
run.py reads the policy and baseline files and estimates each program, output.py writes the
verdicts as text, JSON (elfcost.check/4) and JUnit XML.
"""
