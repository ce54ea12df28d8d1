# Last stage: a JSON + Markdown summary of everything the run produced (ga/pipeline/report.py).


rule report:
    input:
        # every stage's final outputs, appended to FINAL_TARGETS by its rules file (evaluated after all includes)
        outputs=lambda wildcards: FINAL_TARGETS,
    output:
        json=REPORT,
        markdown=f"{RUN}/report/summary.md",
    params:
        # the report shows the whole config, so any config change refreshes it (and nothing else)
        config=config,
        benchmarks=BENCH,
    log:
        f"{LOGS}/report.log",
    benchmark:
        f"{BENCH}/report.tsv"
    localrule: True
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "ga report --config {CONFIG_FILE:q} --benchmarks {params.benchmarks:q} --json {output.json:q}"
        " --markdown {output.markdown:q} {input.outputs:q} > {log:q} 2>&1"
