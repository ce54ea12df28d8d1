"""The user's command line on top of the API: bring a document, get answers from it (docs/tutorial.md).

    ga adapt --generator DIR [--base-model DIR|ID] --context FILE... --out ADAPTER   encode files into an adapter
    ga ask --adapter ADAPTER "question"                                             one greedy answer
    ga chat --adapter ADAPTER                                                       a conversation (history kept)
    ga export-peft --adapter ADAPTER --out DIR                                      a standard PEFT LoRA folder

Modules: `context` reads and tokenizes context files in bounded blocks; `adapter` makes adapter files and loads
what they were made with (generator, base model), checking that it fits; `chat` holds a conversation with an
adapted model; `cli` is the commands' typed argument surfaces. Heavy libraries are imported inside functions, so
that `ga --help` stays fast.
"""
