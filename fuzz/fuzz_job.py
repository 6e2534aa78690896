"""Coverage-guided fuzzing (atheris) of the decoder for Task Scheduler 1.0 .job files.

Run through `python3 fuzz/run_all.py --seconds N` (seeds and findings handled there), or directly:
`python3 fuzz/fuzz_job.py CORPUS_DIR -max_total_time=60`.
"""

from _harness import main

if __name__ == "__main__":
    main(["job"])
