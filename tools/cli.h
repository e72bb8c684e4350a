/* cli.h - the trainyard command line: one file per subcommand, shared option parsing here. */
#ifndef TY_TOOLS_CLI_H
#define TY_TOOLS_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "trainyard.h"

int cmd_generate(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_detokenize(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_bench(int argc, char **argv);

/* Options shared by the subcommands that load a model. */
typedef struct cli_opts {
    const char *model;     /* -m; NULL: the built-in demo model */
    const char *prompt;    /* -p */
    const char *prompt_file; /* -f / --file */
    const char *system;    /* --system */
    const char *out;       /* -o */
    const char *tokens;    /* --tokens 1,2,3 */
    int64_t n_predict;     /* -n */
    int64_t n_ctx;         /* -c */
    int n_threads;         /* -t */
    const char *device;    /* --device */
    bool exact;            /* --exact: reference math */
    bool raw;              /* --raw: no chat template */
    bool no_bos, parse_special, verbose;
    bool json, no_bandwidth; /* bench: --json, --no-bandwidth */
    bool synthetic_depth;    /* bench: --synthetic-depth */
    int64_t repeats;       /* bench: -r */
    int64_t depth;         /* bench: --ctx-depth */
    int kv_type;           /* --kv f16|f32|q8_0 (TY_KV_*) */
    const char *draft_model; /* --draft-model: speculative decoding with this draft */
    int draft_max, draft_min; /* --draft-max, --draft-min (0: the library's defaults) */
    bool lookup;           /* --lookup: speculative decoding by prompt lookup */
    const char *oracle_accept; /* bench: --oracle-accept RATE[,RATE...] (NULL: off) */
    ty_sampler_params sp;
    bool seed_set;
    int n_pos;             /* positional arguments left in pos[] */
    char **pos;
} cli_opts;

/* Parses argv[1..] (argv[0] is the subcommand). Returns 0, or prints a one-line error and
 * returns 2. `allowed` lists the option letters/names a subcommand accepts, space separated. */
int cli_parse(int argc, char **argv, const char *allowed, cli_opts *o);

/* Opens o->model (or the built-in model) with o's device and threads; prints errors. */
int cli_open_model(const cli_opts *o, ty_model **model, double *load_seconds);
/* The same for o->draft_model (*model stays NULL when there is none). */
int cli_open_draft(const cli_opts *o, ty_model **model);
/* Sets the speculative-decoding fields of cp from o (draft: the model cli_open_draft opened). */
void cli_speculative_params(const cli_opts *o, ty_model *draft, ty_context_params *cp);
/* `trainyard bench --draft-model FILE` or `--lookup` (bench_spec.c). */
int bench_speculative(const cli_opts *o);

/* Prints the speculative-decoding statistics line to stderr (nothing if there were no steps). */
void cli_print_speculative(const ty_generate_stats *st);

/* Prints "trainyard: <what>: <message>" to stderr and returns 1. */
int cli_fail(const char *what, const char *msg);

const char *cli_default_model(void);
void cli_done(cli_opts *o); /* frees what cli_parse allocated */

/* Reads a whole file (for -f); NULL and an error printed on failure. */
char *cli_read_text(const char *path, size_t *len);

#endif
