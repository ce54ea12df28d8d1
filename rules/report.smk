# Last stage: a JSON + Markdown summary of everything the run produced (ga/stages/report.py).


rule report:
    input:
        # every stage's final outputs, appended to FINAL_TARGETS by its rules file (evaluated after all includes)
        outputs=lambda wildcards: FINAL_TARGETS,
    output:
        json=REPORT,
        markdown=f"{RUN}/report/summary.md",
    params:
        depends_on=stage_params("report"),
    log:
        f"{LOGS}/report.log",
    benchmark:
        f"{BENCH}/report.tsv"
    localrule: True
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        stage_shell("report")
