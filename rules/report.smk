# Last stage: what the run produced, for people (ga/stages/report.py, ga/report/): summary.json / summary.md, and
# index.html (one self-contained page: the DAG, data statistics, training curves, every evaluation beside the
# paper's numbers, costs, stage timings, config and versions) with its figures in plots/. The page and the figures
# are also marked for Snakemake's own report: `snakemake --report report.html` (captions in workflow/report/).


rule report:
    input:
        # every stage's final outputs, appended to FINAL_TARGETS by its rules file (evaluated after all includes)
        outputs=lambda wildcards: FINAL_TARGETS,
        snakefile=workflow.main_snakefile,  # to draw the rule graph
    output:
        json=REPORT,
        markdown=LAYOUT.report_markdown,
        html=report(LAYOUT.report_html, caption="../workflow/report/index.rst", category="Run report"),
        plots=report(
            directory(LAYOUT.report_plots),
            patterns=["{figure}.png"],
            caption="../workflow/report/figure.rst",
            category="Figures",
            labels={"figure": "{figure}"},
        ),
    log:
        LAYOUT.log("report"),
    benchmark:
        LAYOUT.benchmark("report")
    localrule: True
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        depends_on=stage_params("report"),
        optional_inputs=optional_input_flags("report"),
    shell:
        stage_shell("report")
