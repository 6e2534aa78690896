"""Coverage-guided fuzzing (atheris) of the decoder for self-relative security descriptors (TaskCache Tree SD).

Run through `python3 fuzz/run_all.py --seconds N` (seeds and findings handled there), or directly:
`python3 fuzz/fuzz_sd.py CORPUS_DIR -max_total_time=60`.
"""

from _harness import main

if __name__ == "__main__":
    main(["security_descriptor"])
