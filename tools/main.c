/* main.c - the trainyard command: dispatches to one subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *help;
} COMMANDS[] = {
    {"generate", cmd_generate, "generate [-m FILE] -p TEXT [-n N] [sampling options]  stream an answer"},
    {"chat", cmd_chat, "chat [-m FILE] [--system TEXT]                          talk in the terminal"},
    {"info", cmd_info, "info FILE                                                metadata and tensors"},
    {"tokenize", cmd_tokenize, "tokenize -m FILE [--no-bos] [--parse-special] (TEXT | --file F)"},
    {"detokenize", cmd_detokenize, "detokenize -m FILE ID...                                 ids to text"},
    {"logits", cmd_logits, "logits -m FILE --tokens 1,2,3 -o OUT                     raw float32 logits"},
    {"bench", cmd_bench, "bench [-m FILE] [-p 512] [-n 128] [-t N] [-r 3] [--ctx-depth D [--synthetic-depth]] [--json]  speed\n"
                         "  trainyard bench [-m FILE] --draft-model FILE [--draft-max K] [--oracle-accept RATE,...] [--lookup]  speculative speedup"},
    {"synth", cmd_synth, "synth -o OUT [--preset mistral-7b|draft|tiny] [--type Q4_K_M]  random-weight model"},
};

static void usage(FILE *f) {
    fprintf(f, "trainyard %s - local LLM inference (llama/Mistral GGUF)\nusage:\n", ty_version());
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        fprintf(f, "  trainyard %s\n", COMMANDS[i].help);
    fprintf(f, "common options: -t THREADS  --device cpu|auto  -c CONTEXT  --exact (reference math)\n"
               "sampling: --temp T (0 = greedy) --top-k K --top-p P --min-p P --repeat-penalty R "
               "--seed S\n"
               "speculative decoding (generate, chat, bench): --draft-model FILE (same vocabulary) "
               "--draft-max K (default %d) --draft-min K --lookup (prompt lookup)\n",
            TY_DRAFT_MAX_DEFAULT);
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("trainyard %s\n", ty_version());
        return 0;
    }
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        if (strcmp(argv[1], COMMANDS[i].name) == 0) return COMMANDS[i].run(argc - 1, argv + 1);
    fprintf(stderr, "trainyard: unknown command '%s' (try trainyard --help)\n", argv[1]);
    return 2;
}
