"""Coverage-guided fuzzing (atheris) of the registry transaction-log decoder (hive .LOG1/.LOG2 replay plan).

Run through `python3 fuzz/run_all.py --seconds N` (seeds and findings handled there), or directly:
`python3 fuzz/fuzz_hive_log.py CORPUS_DIR -max_total_time=60`.
"""

from _harness import main

if __name__ == "__main__":
    main(["hive_log"])
