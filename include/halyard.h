/* Halyard public C API.
 *
 * Conventions:
 *  - Handles are opaque. Every halyard_*_create/load has a matching *_free; passing NULL to a
 *    free function is a no-op.
 *  - Options structs begin with struct_size; fill them with the matching *_default() macro,
 *    then change fields. It expands to halyard_X_options_init(o, sizeof *o): the library writes
 *    the defaults of the fields the caller's struct has, no more, and sets struct_size to its
 *    size. Fields are only ever appended and the library reads only struct_size bytes, so a
 *    binary built against an older header keeps working with a newer library: the fields it
 *    does not know take their defaults.
 *  - Every call returns a halyard_status. On failure halyard_last_error() gives a message for the
 *    calling thread, valid until that thread's next Halyard call.
 *  - No C++ exception crosses this API.
 *
 * Thread safety, precisely:
 *  - Any thread, any time: halyard_last_error (per thread), halyard_status_name, halyard_version,
 *    halyard_finish_reason_name, halyard_list_devices / halyard_list_options and the accessors of
 *    the lists they return, the *_default() functions.
 *  - A model's read-only calls (halyard_tokenize, halyard_detokenize,
 *    halyard_apply_chat_template and the halyard_model_* getters) may run on any threads at once,
 *    concurrently with each other and with the model's generation, sessions and contexts.
 *  - halyard_generate calls on one model are serialised internally (a second call waits).
 *  - Sessions, contexts and halyard_generate of one model share its device: run their calls
 *    (halyard_session_*, halyard_context_*, halyard_seq_*) from one thread at a time, for all of
 *    that model's sessions and contexts together, and not while halyard_generate runs on the
 *    model from another thread. Different models are independent.
 *  - The one exception: halyard_seq_cancel may run on any thread at any time between
 *    halyard_context_create and halyard_context_free, concurrently with every call on that
 *    context (a running halyard_context_step included).
 *  - halyard_model_free / halyard_context_free / halyard_session_free: no other call on that
 *    object (or, for a model, on its sessions and contexts) may be running or follow.
 *  - Callbacks must not re-enter the library: a halyard_token_callback runs inside
 *    halyard_generate on the caller's thread holding the model's generation lock (another
 *    halyard_generate on that model from it deadlocks; any session or context call of the model
 *    is a concurrent use); it may call halyard_seq_cancel and halyard_last_error only. The log
 *    callback may run on any thread that logs, backend worker threads included, under the log
 *    sink's lock: it must call no Halyard function.
 */
#ifndef HALYARD_H_
#define HALYARD_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HALYARD_API __attribute__((visibility("default")))

/* Every status code has exactly one meaning, the same from every call. */
typedef enum halyard_status {
  HALYARD_OK = 0,
  HALYARD_ERROR_INVALID_ARGUMENT = 1, /* a malformed argument or option value (NULL, NaN, out of its range) */
  HALYARD_ERROR_NOT_FOUND = 2,        /* a file, plugin, backend or device that does not exist */
  HALYARD_ERROR_UNAVAILABLE = 3,      /* a backend or device that exists but cannot be used here */
  HALYARD_ERROR_UNIMPLEMENTED = 4,    /* an op, dtype or architecture Halyard does not support */
  HALYARD_ERROR_OUT_OF_RANGE = 5,     /* a request no state could satisfy: a prompt longer than the whole context */
  HALYARD_ERROR_OUT_OF_MEMORY = 6,    /* host or device memory could not be allocated */
  HALYARD_ERROR_CORRUPT_FILE = 7,     /* a model file or saved state that is truncated or malformed */
  HALYARD_ERROR_CANCELLED = 8,        /* the caller stopped the work (a callback returned non-zero, or
                                         halyard_seq_cancel: see halyard_context_step) */
  HALYARD_ERROR_KV_CACHE_FULL = 9,    /* the KV cache has no room for these tokens now; nothing changed */
  HALYARD_ERROR_INTERNAL = 10,        /* a bug or a device failure; the message says which */
  HALYARD_ERROR_BUFFER_TOO_SMALL = 11 /* the *_out size tells how much is needed */
} halyard_status;

HALYARD_API const char* halyard_last_error(void);
HALYARD_API const char* halyard_status_name(halyard_status status);
HALYARD_API const char* halyard_version(void);
/* Log verbosity of the library: 0 errors only, 1 warnings (default), 2 info, 3 debug.
 * The library never writes to stdout: messages go to stderr, or to the sink set below. */
HALYARD_API void halyard_set_log_level(int level);
/* Receives every log message at or above the level (0 error, 1 warning, 2 info, 3 debug) instead
 * of stderr; NULL restores stderr. Called from any thread that logs; message is valid during the
 * call only. Set it before loading models. */
typedef void (*halyard_log_callback)(int level, const char* message, void* user_data);
HALYARD_API void halyard_set_log_callback(halyard_log_callback callback, void* user_data);

/* ---- Devices ---------------------------------------------------------------------------- */

typedef struct halyard_device_list halyard_device_list;

/* Every backend plugin found, with its devices, or one entry saying why it is unavailable. */
HALYARD_API halyard_status halyard_list_devices(halyard_device_list** out);
HALYARD_API size_t halyard_device_list_size(const halyard_device_list* list);
/* Fields of entry i; strings live as long as the list. uri is "" for an unavailable backend. */
HALYARD_API const char* halyard_device_list_backend(const halyard_device_list* list, size_t i);
HALYARD_API const char* halyard_device_list_uri(const halyard_device_list* list, size_t i);
HALYARD_API const char* halyard_device_list_description(const halyard_device_list* list, size_t i);
HALYARD_API int halyard_device_list_available(const halyard_device_list* list, size_t i);
/* The device "auto" would choose, or NULL if none. */
HALYARD_API const char* halyard_device_list_auto(const halyard_device_list* list);
HALYARD_API void halyard_device_list_free(halyard_device_list* list);

/* ---- Backend options -------------------------------------------------------------------- */

typedef struct halyard_option_list halyard_option_list;

/* Every option of every backend plugin that loaded, available or not (listing starts no vendor
 * runtime). The list is a snapshot: "current" is the option's environment variable as it was
 * when the list was made. Owned by the caller; free with halyard_option_list_free. */
HALYARD_API halyard_status halyard_list_options(halyard_option_list** out);
HALYARD_API size_t halyard_option_list_size(const halyard_option_list* list);
/* Fields of option i; strings live as long as the list, "" where a field does not apply (and
 * for i out of range). */
HALYARD_API const char* halyard_option_list_backend(const halyard_option_list* list, size_t i); /* "cpu" */
HALYARD_API const char* halyard_option_list_key(const halyard_option_list* list, size_t i);     /* "cpu.kernels" */
/* "bool", "int", "string" or "enum". */
HALYARD_API const char* halyard_option_list_type(const halyard_option_list* list, size_t i);
/* The allowed values: "auto, generic, avx2" for an enum, "[0, 1099511627776]" for an int. */
HALYARD_API const char* halyard_option_list_values(const halyard_option_list* list, size_t i);
HALYARD_API const char* halyard_option_list_default(const halyard_option_list* list, size_t i);
/* The HALYARD_* environment variable that sets the option. */
HALYARD_API const char* halyard_option_list_env(const halyard_option_list* list, size_t i);
/* The value of that variable, or NULL when it is unset or empty (the default then applies). */
HALYARD_API const char* halyard_option_list_current(const halyard_option_list* list, size_t i);
HALYARD_API const char* halyard_option_list_doc(const halyard_option_list* list, size_t i);
HALYARD_API void halyard_option_list_free(halyard_option_list* list);

/* ---- Models ----------------------------------------------------------------------------- */

typedef struct halyard_model halyard_model;

typedef struct halyard_model_options {
  size_t struct_size;
  const char* device;     /* "auto", "ref", "cpu", "vulkan:0", ...; NULL (default): HALYARD_DEVICE, else "auto" */
  int32_t context_length; /* 0: min(training context, 4096) */
  int32_t threads;        /* CPU threads (cpu device); 0: physical cores; HALYARD_THREADS if 0 */
  /* Backend options as a NULL-terminated array of "key=value" strings ("cpu.kernels=avx2",
   * "vulkan.validation=1", ...; halyard_list_options lists them), or NULL. They override the
   * options' HALYARD_* environment variables, which override the defaults. Options of other
   * backends than the chosen device's are ignored; an unknown key of its backend, a backend that
   * is not loaded or a bad value fails the load with HALYARD_ERROR_INVALID_ARGUMENT. Only read
   * during halyard_model_load. */
  const char* const* backend_options;
  /* The KV cache's element type: HALYARD_KV_F16 (0, the default: 2 bytes an element, rounded to
   * nearest even) or HALYARD_KV_F32 (4 bytes, exact). Another value fails the load with
   * HALYARD_ERROR_INVALID_ARGUMENT; a device without that cache type with HALYARD_ERROR_UNIMPLEMENTED. */
  int32_t kv_dtype;
  /* Appended after the 230fb20 header (an older struct_size ends where this begins, and gets the
   * default). A bitwise OR of HALYARD_LOAD_* flags; 0 (default): none. An unknown bit fails the
   * load with HALYARD_ERROR_INVALID_ARGUMENT. */
  uint64_t load_flags;
  /* Nonzero: a byte-level BPE file whose tokenizer.ggml.pre Halyard does not know is split as
   * GPT-2 splits (a warning is logged) instead of failing the load with
   * HALYARD_ERROR_UNIMPLEMENTED. Default 0. */
  int32_t force_gpt2_split;
} halyard_model_options;

enum { HALYARD_KV_F16 = 0, HALYARD_KV_F32 = 1 };
/* Without it, on a device that reads host memory in place (ref, cpu), weights are used straight
 * from the memory-mapped model file (the file must not change while the model is loaded); with
 * it they are copied into device buffers, as GPU devices always do (llama.cpp's --no-mmap): a
 * load then holds about twice the file's size in memory at its peak. */
#define HALYARD_LOAD_NO_MMAP ((uint64_t)1)

/* Each halyard_X_options_init(options, size) writes the defaults of the first min(size,
 * sizeof(halyard_X_options)) bytes of *options and sets struct_size to that many (nothing is
 * written when size < sizeof(size_t)). Call it through halyard_X_options_default(options), which
 * passes the caller's own sizeof, so a newer library never writes past an older caller's
 * struct. Functions named halyard_X_options_default are still exported for binaries built
 * before these macros existed: they write the structs as that header declared them (model and
 * generate options as now, context options up to max_batch_tokens), never more. */
HALYARD_API void halyard_model_options_init(halyard_model_options* options, size_t size);
HALYARD_API void halyard_model_options_default(halyard_model_options* options);
#define halyard_model_options_default(options) halyard_model_options_init((options), sizeof(*(options)))
HALYARD_API halyard_status halyard_model_load(const char* path, const halyard_model_options* options,
                                              halyard_model** out);
HALYARD_API void halyard_model_free(halyard_model* model);
/* Strings live as long as the model. */
HALYARD_API const char* halyard_model_name(const halyard_model* model);
HALYARD_API const char* halyard_model_device(const halyard_model* model);
/* Which chat template halyard_apply_chat_template renders: "the model's own
 * (tokenizer.chat_template)", or the builtin format standing in for it ("builtin ChatML",
 * "builtin Llama-3") when the file has none or one the interpreter cannot render. */
HALYARD_API const char* halyard_model_chat_template(const halyard_model* model);
/* What the opened device runs: e.g. for cpu its threads, kernel set and prefill path. */
HALYARD_API const char* halyard_model_device_details(const halyard_model* model);
HALYARD_API int32_t halyard_model_context_length(const halyard_model* model);
HALYARD_API int32_t halyard_model_vocab_size(const halyard_model* model);
/* Bytes of weights on the device (what every decode step reads) and their element count. */
HALYARD_API uint64_t halyard_model_weight_bytes(const halyard_model* model);
HALYARD_API uint64_t halyard_model_parameter_count(const halyard_model* model);
/* The part of halyard_model_weight_bytes used in place from the memory-mapped file (see
 * HALYARD_LOAD_NO_MMAP); the rest was copied into device buffers. 0 for NULL. */
HALYARD_API uint64_t halyard_model_mapped_weight_bytes(const halyard_model* model);
/* A 64-bit name of the model's weights, computed once at load (a hash of its architecture
 * config and, per tensor, its name, dtype, shape and first and last 4 KiB): the same file gives
 * the same value on every device, context length and KV dtype. Saved sequence states carry it
 * (halyard_seq_state_save). 0 for NULL. */
HALYARD_API uint64_t halyard_model_fingerprint(const halyard_model* model);
/* Bytes of K and V one token position holds across all layers, in the model's KV dtype
 * (2 bytes an element for f16, 4 for f32). */
HALYARD_API uint64_t halyard_model_kv_bytes_per_token(const halyard_model* model);

/* ---- Text ------------------------------------------------------------------------------- */

/* Writes up to capacity ids; *n_out receives the full count (BUFFER_TOO_SMALL if it exceeds
 * capacity). add_special prepends BOS where the model wants it; parse_special turns control
 * token texts such as "<|im_start|>" into those tokens (user-defined tokens, such as Gemma's
 * runs of newlines, are matched either way, as in llama.cpp). */
HALYARD_API halyard_status halyard_tokenize(const halyard_model* model, const char* text, size_t text_len,
                                            int add_special, int parse_special, int32_t* tokens, size_t capacity,
                                            size_t* n_out);
/* Writes the text of tokens (not NUL-terminated); *n_out receives its full length. */
HALYARD_API halyard_status halyard_detokenize(const halyard_model* model, const int32_t* tokens, size_t n_tokens,
                                              char* text, size_t capacity, size_t* n_out);

/* 1 when token is one of the model's end-of-generation tokens (EOS, EOT, <|im_end|>, ...),
 * the tokens halyard_generate stops at without emitting them; 0 otherwise (also for NULL or an
 * id outside the vocabulary). For callers that sample from halyard_context_logits themselves. */
HALYARD_API int halyard_token_is_end_of_generation(const halyard_model* model, int32_t token);

typedef struct halyard_chat_message {
  const char* role; /* "system", "user", "assistant" */
  const char* content;
} halyard_chat_message;

/* Formats a conversation with the model's chat template, ending with the assistant header.
 * A template that refuses the conversation (its raise_exception, e.g. roles that do not
 * alternate) gives HALYARD_ERROR_INVALID_ARGUMENT with its message. Content may be empty. */
HALYARD_API halyard_status halyard_apply_chat_template(const halyard_model* model, const halyard_chat_message* messages,
                                                       size_t n_messages, char* text, size_t capacity, size_t* n_out);

/* Chat with tools (added after halyard_apply_chat_template, whose message struct has no
 * struct_size and so cannot grow): structured messages and tools as OpenAI's JSON. */
typedef struct halyard_chat_template_options {
  size_t struct_size;
  /* NULL: the messages/n_messages arguments are the conversation. Else OpenAI's `messages` as a
   * JSON array, which replaces them: content a string, null or [{"type": "text", "text"}]
   * parts; assistant "tool_calls": [{"id", "type": "function", "function": {"name",
   * "arguments": JSON text}}]; "tool" turns with "tool_call_id" and "name". The template sees
   * them as transformers gives them (arguments parsed into a mapping when a JSON object). */
  const char* messages_json;
  /* NULL or "": no tools. Else OpenAI's `tools`: [{"type": "function", "function": {"name",
   * "description", "parameters"}}], the template's `tools`. */
  const char* tools_json;
  int add_generation_prompt; /* end with the assistant header (default 1) */
} halyard_chat_template_options;
HALYARD_API void halyard_chat_template_options_init(halyard_chat_template_options* options, size_t size);
#define halyard_chat_template_options_default(options) halyard_chat_template_options_init((options), sizeof(*(options)))
/* halyard_apply_chat_template with options (NULL: the defaults). Invalid JSON or a field of the
 * wrong type is HALYARD_ERROR_INVALID_ARGUMENT naming the field (e.g.
 * "messages[1].tool_calls[0].function.name"); a builtin format given tools too. */
HALYARD_API halyard_status halyard_apply_chat_template_ex(const halyard_model* model,
                                                          const halyard_chat_message* messages, size_t n_messages,
                                                          const halyard_chat_template_options* options, char* text,
                                                          size_t capacity, size_t* n_out);
/* How the model's chat template teaches tool calls, from its markers: "hermes"
 * (<tool_call>...</tool_call>), "llama3_json", "mistral" ([TOOL_CALLS]) or "none". Lives as
 * long as the model. */
HALYARD_API const char* halyard_model_tool_call_format(const halyard_model* model);
/* Reads tool calls out of generated text. format: "hermes", "llama3_json", "mistral", "none",
 * or NULL for halyard_model_tool_call_format. Writes JSON (not NUL-terminated) {"content":
 * text outside the calls or null, "tool_calls": [{"id": "call_...", "type": "function",
 * "function": {"name", "arguments": JSON text}}]}; text that does not parse as calls is all
 * content and tool_calls is empty. *n_out receives the full length. */
HALYARD_API halyard_status halyard_parse_tool_calls(const halyard_model* model, const char* text, size_t text_len,
                                                    const char* format, char* json, size_t capacity, size_t* n_out);

/* ---- Generation ------------------------------------------------------------------------- */

/* Values outside these ranges (and NaN) are HALYARD_ERROR_INVALID_ARGUMENT. */
typedef struct halyard_generate_options {
  size_t struct_size;
  int32_t max_tokens; /* >= 0, default 128 */
  float temperature;  /* >= 0; 0: greedy (default 0) */
  int32_t top_k;      /* >= 0, default 40; 0 disables */
  float top_p;        /* in (0, 1], default 0.95; 1 disables */
  uint64_t seed;      /* default 0 */
  int parse_special;  /* treat special-token texts in the prompt as tokens (default 1) */
  /* Fields added later: a caller built against the older header passes the older struct_size,
   * which ends where logit_bias_tokens begins, and gets the defaults for all of these. The
   * sampler applies, in order: logit bias, repeat penalty, presence and frequency penalties,
   * then (unless greedy) top-k, temperature, top-p, min-p, and a seeded draw. */
  /* Logit bias: n_logit_bias pairs (logit_bias_tokens[i], logit_bias_values[i]), added to the
   * logits of those tokens (entries for the same token add up). A value of -INFINITY bans the
   * token; NaN and +INFINITY are refused, and so are ids outside [0, vocab size) and a bias
   * that bans every token. The arrays are read during the call only. Default: none (NULL, 0). */
  const int32_t* logit_bias_tokens;
  const float* logit_bias_values;
  size_t n_logit_bias;
  /* Keep the tokens whose probability after temperature is >= min_p times the largest one.
   * In [0, 1]; default 0 (off). */
  float min_p;
  /* CTRL-style repetition penalty on the tokens of the window (the prompt and the generated
   * tokens, as in llama.cpp): a positive logit is divided by it, a negative one multiplied.
   * Finite and > 0; default 1 (off). */
  float repeat_penalty;
  /* The window of the penalties: the last repeat_last_n tokens. >= -1; default 64; 0: no
   * penalties; -1: the whole sequence. */
  int32_t repeat_last_n;
  /* OpenAI semantics: logit -= presence_penalty * (count > 0) + frequency_penalty * count, count
   * being the token's occurrences in the window. Finite (negative encourages repeats);
   * default 0 (off). */
  float presence_penalty;
  float frequency_penalty;
} halyard_generate_options;

typedef struct halyard_timings {
  size_t struct_size; /* set by the caller */
  int32_t prompt_tokens;
  int32_t generated_tokens;
  double time_to_first_token_ms;
  double prefill_tokens_per_s;
  double decode_tokens_per_s;   /* 0 when fewer than 2 tokens were generated */
  int32_t finish_reason;        /* a halyard_finish_reason */
  int32_t prompt_cached_tokens; /* prompt tokens taken from the prefix cache, not computed */
} halyard_timings;

/* Why generation stopped. */
typedef enum halyard_finish_reason {
  HALYARD_FINISH_NONE = 0,            /* it did not run (an error before the first token) */
  HALYARD_FINISH_MAX_TOKENS = 1,      /* max_tokens were generated */
  HALYARD_FINISH_END_OF_SEQUENCE = 2, /* the model produced an end-of-generation token */
  HALYARD_FINISH_CONTEXT_FULL = 3,    /* the context length was reached */
  HALYARD_FINISH_CANCELLED = 4        /* the callback returned non-zero */
} halyard_finish_reason;
/* "max tokens", "end of sequence", "context full", "cancelled" or "none". */
HALYARD_API const char* halyard_finish_reason_name(int32_t reason);

/* Called for each generated token with the text it completes (may be empty mid-character).
 * If the last token leaves an incomplete UTF-8 character, one more call follows it with token
 * id -1 and those bytes, so the texts of all calls concatenate to exactly the generated text.
 * Return non-zero to stop generation (the call then returns HALYARD_ERROR_CANCELLED). */
typedef int (*halyard_token_callback)(int32_t token, const char* text, size_t text_len, void* user_data);

/* See halyard_model_options_init. */
HALYARD_API void halyard_generate_options_init(halyard_generate_options* options, size_t size);
HALYARD_API void halyard_generate_options_default(halyard_generate_options* options);
#define halyard_generate_options_default(options) halyard_generate_options_init((options), sizeof(*(options)))
/* Generates a continuation of prompt (a fresh sequence each call). The model keeps that
 * sequence's KV cache and compiled graphs between calls, so only the first call allocates and
 * compiles them (and a new prompt length, on host devices). timings may be NULL; when
 * given, it is filled on success and on cancellation. A prompt longer than the context is
 * HALYARD_ERROR_OUT_OF_RANGE, refused before anything is printed or computed. */
HALYARD_API halyard_status halyard_generate(halyard_model* model, const char* prompt,
                                            const halyard_generate_options* options, halyard_token_callback callback,
                                            void* user_data, halyard_timings* timings);

/* ---- Sessions: one sequence, token by token -------------------------------------------- */

typedef struct halyard_session halyard_session;

/* A sequence with its own KV cache on the model's device. Owned by the caller; must be freed
 * before the model. One thread at a time per session. */
HALYARD_API halyard_status halyard_session_create(halyard_model* model, halyard_session** out);
HALYARD_API void halyard_session_free(halyard_session* session);
/* Appends tokens (one runs the decode graph, more a prefill graph) and writes the logits after
 * the last one into logits (room for vocab_size floats) unless it is NULL.
 * HALYARD_ERROR_OUT_OF_RANGE when more tokens are given than the whole context holds;
 * HALYARD_ERROR_KV_CACHE_FULL when they do not fit after the tokens already held. The session is
 * then unchanged. */
HALYARD_API halyard_status halyard_session_eval(halyard_session* session, const int32_t* tokens, size_t n_tokens,
                                                float* logits);
/* Tokens held so far. */
HALYARD_API int32_t halyard_session_position(const halyard_session* session);
/* Forgets the sequence. */
HALYARD_API void halyard_session_reset(halyard_session* session);

/* ---- Contexts: many sequences, one batched step at a time ------------------------------- */

typedef struct halyard_context halyard_context;

/* Values outside these ranges are HALYARD_ERROR_INVALID_ARGUMENT. */
typedef struct halyard_context_options {
  size_t struct_size;
  int32_t max_sequences;    /* sequence ids are 0..max_sequences-1; >= 1, default 1 */
  int32_t kv_blocks;        /* KV capacity in blocks of halyard_context_block_size() positions;
                               >= 0; 0 (default): every sequence can fill the model's context */
  int32_t max_batch_tokens; /* the most tokens one step takes; >= 1, default 512 */
  /* Fields added later: a caller built against the older header passes the older struct_size,
   * which ends where kv_bytes begins, and gets the defaults for these. */
  /* The KV capacity as a byte budget instead of kv_blocks: the most whole blocks that fit in it
   * (halyard_context_kv_bytes_per_block() gives a block's bytes). 0 (default): unused; > 0
   * with kv_blocks > 0 as well, < 0, or less than one block: HALYARD_ERROR_INVALID_ARGUMENT.
   * (A GPU context's few padding blocks come on top of it.) */
  int64_t kv_bytes;
  /* The cache's element type, encoded as halyard_model_options.kv_dtype: HALYARD_KV_F32 (1)
   * for f32; 0 (default, and HALYARD_KV_F16's value): the model's KV dtype, which is f16 unless
   * the model was loaded with HALYARD_KV_F32. Another value: HALYARD_ERROR_INVALID_ARGUMENT. */
  int32_t kv_dtype;
  /* Non-zero (default 1): keep the full blocks of emptied sequences for
   * halyard_seq_attach_prefix (the prefix cache); 0: freed blocks are free at once and
   * attach_prefix reuses nothing. */
  int32_t prefix_cache;
} halyard_context_options;

/* See halyard_model_options_init. */
HALYARD_API void halyard_context_options_init(halyard_context_options* options, size_t size);
HALYARD_API void halyard_context_options_default(halyard_context_options* options);
#define halyard_context_options_default(options) halyard_context_options_init((options), sizeof(*(options)))
/* A paged KV cache shared by max_sequences sequences on the model's device, with the compiled
 * graphs of the batch shapes it has run. Owned by the caller; must be freed before the model.
 * Thread safety: one thread at a time per context (calls on one context are not synchronised),
 * and one at a time for all the contexts and sessions of one model, except halyard_seq_cancel
 * (any thread, any time; see the top of this header). */
HALYARD_API halyard_status halyard_context_create(halyard_model* model, const halyard_context_options* options,
                                                  halyard_context** out);
HALYARD_API void halyard_context_free(halyard_context* context);

/* A batch of n_tokens tokens from any sequences, filled by the caller; the arrays are read
 * during halyard_context_step only. Each sequence's tokens continue it in order: the first at
 * its halyard_seq_pos_max() + 1, the next one further. Prefill chunks of some sequences and
 * decode tokens of others may be mixed: the whole batch is one graph run. */
typedef struct halyard_batch {
  size_t struct_size;
  size_t n_tokens;
  const int32_t* tokens;    /* token ids */
  const int32_t* positions; /* each token's position in its sequence */
  const int32_t* seq_ids;   /* each token's sequence */
  const int8_t* logits;     /* non-zero: keep this token's logits; NULL: only the last token's */
  /* Fields added later: a caller built against the older header passes the older struct_size,
   * which ends where output begins, and gets HALYARD_OUTPUT_LOGITS. */
  /* What the tokens that ask for logits get: HALYARD_OUTPUT_LOGITS (0, default): their logits
   * (halyard_context_logits); HALYARD_OUTPUT_ARGMAX (1): only the index of their largest logit
   * (halyard_context_argmax; the first one on ties), taken on the device where it can (the
   * graph ends in ARGMAX and one int32 per token is downloaded instead of vocab_size floats), for
   * greedy decoding. Another value: HALYARD_ERROR_INVALID_ARGUMENT. */
  int32_t output;
} halyard_batch;
enum { HALYARD_OUTPUT_LOGITS = 0, HALYARD_OUTPUT_ARGMAX = 1 };

/* Runs the batch. First the tokens of cancelled sequences (halyard_seq_cancel) are left out,
 * unchecked and with nothing written for them. Then, for the tokens left:
 *  - HALYARD_OK: every token ran.
 *  - HALYARD_ERROR_KV_CACHE_FULL when the cache lacks the blocks they need (free some with
 *    halyard_seq_remove), HALYARD_ERROR_INVALID_ARGUMENT for a bad token, sequence id or
 *    position, HALYARD_ERROR_OUT_OF_RANGE past the context length: nothing changed.
 *  - HALYARD_ERROR_CANCELLED: some tokens were left out and the others ran (logits and K/V as for
 *    HALYARD_OK); halyard_context_step_ran says which. When every token was left out no graph
 *    ran and nothing changed.
 *  - HALYARD_ERROR_INTERNAL (or OUT_OF_MEMORY): the device failed; the written positions were
 *    removed again. */
HALYARD_API halyard_status halyard_context_step(halyard_context* context, const halyard_batch* batch);
/* 1 when token i of the last halyard_context_step ran (its sequence holds it now), 0 when it was
 * left out as cancelled, when the last step failed otherwise, or past its batch. */
HALYARD_API int halyard_context_step_ran(const halyard_context* context, size_t i);
/* The logits (vocab_size floats) of token i of the last step, valid until the next step; NULL
 * when token i did not ask for logits, did not run, or the last step did not have it (an
 * HALYARD_OUTPUT_ARGMAX step has no logits). */
HALYARD_API const float* halyard_context_logits(const halyard_context* context, size_t i);
/* The index of token i's largest logit after the last step, of either output (the first maximum
 * on ties); -1 when token i did not ask for logits, did not run, or past the batch. */
HALYARD_API int32_t halyard_context_argmax(const halyard_context* context, size_t i);
/* Cancels a sequence: every halyard_context_step that begins after this call returns leaves its
 * tokens out (see there), until the sequence is emptied (halyard_seq_remove(ctx, seq, 0, -1),
 * halyard_seq_keep of another sequence, halyard_seq_copy onto it), which clears the flag so the
 * sequence can be used again. A step already running when it is called may still run them: a
 * sequence advances at most one step after cancellation. The one context call that may run on
 * any thread, concurrently with any other call on the context (it sets an atomic flag and
 * nothing else); the context must not be freed meanwhile. HALYARD_ERROR_OUT_OF_RANGE for a seq
 * outside [0, max_sequences). Cancelling an empty or already cancelled sequence is allowed. */
HALYARD_API halyard_status halyard_seq_cancel(halyard_context* context, int32_t seq);

/* Removes positions [p0, p1) of a sequence (p1 < 0: to its end); freed blocks return to the
 * cache, and halyard_seq_remove(ctx, seq, 0, -1) empties the sequence. Removing a middle range
 * is exact: the positions after it are recomputed at their new places from the tokens the
 * context recorded (a prefill of that tail, in steps of max_batch_tokens), as if the sequence had
 * been fed without the range; it invalidates the last step's logits. HALYARD_ERROR_KV_CACHE_FULL,
 * changing nothing, when that recomputation could not get its blocks. */
HALYARD_API halyard_status halyard_seq_remove(halyard_context* context, int32_t seq, int32_t p0, int32_t p1);
/* dst becomes a copy of src (dst's old contents are released). The two share their blocks until
 * one of them writes into a shared block, which is copied then (copy-on-write). */
HALYARD_API halyard_status halyard_seq_copy(halyard_context* context, int32_t src, int32_t dst);
/* Empties every sequence but seq. */
HALYARD_API halyard_status halyard_seq_keep(halyard_context* context, int32_t seq);
/* The last position a sequence holds, -1 when it is empty (or seq is not a sequence id). */
HALYARD_API int32_t halyard_seq_pos_max(const halyard_context* context, int32_t seq);
/* The first position it holds (0), -1 when it is empty (or seq is not a sequence id). */
HALYARD_API int32_t halyard_seq_pos_min(const halyard_context* context, int32_t seq);
/* Sequence state: a sequence's tokens and K/V as host bytes in a little-endian, versioned,
 * device-neutral layout (docs/architecture.md, "Sequence state": model fingerprint, KV dtype,
 * layers, kv_dim, positions, tokens, then each layer's K and V rows, and a CRC-32), so a
 * sequence can move to another context of a model with the same fingerprint, on any device; an
 * f16 state loads into an f32 cache and back (converted, f32 -> f16 rounding to nearest even).
 * *out receives the bytes halyard_seq_state_save writes for seq now. */
HALYARD_API halyard_status halyard_seq_state_size(const halyard_context* context, int32_t seq, size_t* out);
/* Writes seq's state into buf; *n_out receives its size. HALYARD_ERROR_BUFFER_TOO_SMALL (nothing
 * written) when that exceeds capacity; buf may be NULL with capacity 0 to ask the size. */
HALYARD_API halyard_status halyard_seq_state_save(const halyard_context* context, int32_t seq, void* buf,
                                                  size_t capacity, size_t* n_out);
/* Loads a state (n bytes at buf, read during the call only) into seq, which must be empty. The
 * tokens become the sequence's recorded tokens, so it continues, and a middle-range
 * halyard_seq_remove recomputes, as if this context had computed it. Every error changes
 * nothing and the message names what is wrong: HALYARD_ERROR_INVALID_ARGUMENT for a state of
 * another model (fingerprint), other layer count or kv_dim, or a sequence that is not empty;
 * HALYARD_ERROR_CORRUPT_FILE for bytes that are truncated, too many, or corrupt (magic, version,
 * dtype code, CRC-32, a token outside the vocabulary); HALYARD_ERROR_KV_CACHE_FULL when the cache
 * has too few free blocks; HALYARD_ERROR_OUT_OF_RANGE for more positions than the context. */
HALYARD_API halyard_status halyard_seq_state_load(halyard_context* context, int32_t seq, const void* buf, size_t n);
/* Capacity: the cache's blocks, those in use, and positions per block (0 for NULL). */
HALYARD_API int32_t halyard_context_kv_blocks_total(const halyard_context* context);
HALYARD_API int32_t halyard_context_kv_blocks_used(const halyard_context* context);
HALYARD_API int32_t halyard_context_block_size(const halyard_context* context);
HALYARD_API int32_t halyard_context_max_sequences(const halyard_context* context);
/* Bytes one block of the cache takes across all layers, K and V, in the context's KV dtype
 * (halyard_context_block_size() times halyard_model_kv_bytes_per_token() when the context has the
 * model's dtype); 0 for NULL. A kv_bytes budget buys kv_bytes / this blocks. */
HALYARD_API uint64_t halyard_context_kv_bytes_per_block(const halyard_context* context);

/* Prefix cache. Every full block of halyard_context_block_size() positions a step completes is
 * identified by the hash chain of the tokens up to its end; when its sequence is emptied the
 * block stays cached (it counts as free: a new block evicts the least recently used of them).
 * For an empty sequence about to be fed a prompt, halyard_seq_attach_prefix shares the cached
 * blocks the prompt starts with (whole blocks, never its last token, so a step that feeds
 * prompt[*n_cached..] follows and yields the last token's logits) and sets *n_cached to the
 * positions the sequence now holds (0 when nothing matched). Logits after a hit equal those of
 * recomputing the prompt. HALYARD_ERROR_INVALID_ARGUMENT when the sequence is not empty. */
HALYARD_API halyard_status halyard_seq_attach_prefix(halyard_context* context, int32_t seq, const int32_t* tokens,
                                                     size_t n_tokens, int32_t* n_cached);
/* Blocks halyard_seq_attach_prefix reused, full prompt blocks it found no match for, and blocks
 * held by no sequence that the cache keeps (part of the free blocks); 0 for NULL. */
HALYARD_API int64_t halyard_context_prefix_hits(const halyard_context* context);
HALYARD_API int64_t halyard_context_prefix_misses(const halyard_context* context);
HALYARD_API int32_t halyard_context_kv_blocks_cached(const halyard_context* context);

/* ---- Samplers: the chain halyard_generate uses, for callers that step contexts ---------- */

typedef struct halyard_sampler halyard_sampler;
/* A sampler for one sequence, configured by the sampling fields of options (logit bias, repeat,
 * presence and frequency penalties with their window, temperature, top_k, top_p, min_p, seed;
 * max_tokens and parse_special are not used), validated as halyard_generate validates them
 * against the model's vocabulary (HALYARD_ERROR_INVALID_ARGUMENT naming the field). options
 * NULL: the defaults (greedy). The bias arrays are copied. Same options, same accepted tokens
 * and same logits give the same tokens as halyard_generate. Thread safety: one thread at a time
 * per sampler; samplers are independent of each other and of contexts. */
HALYARD_API halyard_status halyard_sampler_create(const halyard_model* model, const halyard_generate_options* options,
                                                  halyard_sampler** out);
HALYARD_API void halyard_sampler_free(halyard_sampler* sampler);
/* Records n_tokens tokens of the sequence for the penalties (its prompt, then each token it
 * samples: halyard_sampler_sample does not record). */
HALYARD_API halyard_status halyard_sampler_accept(halyard_sampler* sampler, const int32_t* tokens, size_t n_tokens);
/* Draws the next token from logits (n_vocab floats, the model's vocabulary size; read only):
 * the chain in halyard_generate_options' order. *token receives it. */
HALYARD_API halyard_status halyard_sampler_sample(halyard_sampler* sampler, const float* logits, size_t n_vocab,
                                                  int32_t* token);
/* 1 when sampling needs the logits now, 0 when it would be their argmax (greedy, no bias, no
 * penalty with tokens in its window): then an HALYARD_OUTPUT_ARGMAX step's halyard_context_argmax
 * is the token, and skipping halyard_sampler_sample changes nothing. */
HALYARD_API int halyard_sampler_needs_logits(const halyard_sampler* sampler);
/* Forgets the accepted tokens and restarts the random draws from the seed. */
HALYARD_API void halyard_sampler_reset(halyard_sampler* sampler);

/* ---- Quantization ----------------------------------------------------------------------- */

/* One line of text (no trailing newline), valid during the call. It runs on the caller's thread
 * and must call no Halyard function. */
typedef void (*halyard_message_callback)(const char* line, void* user_data);

typedef struct halyard_quantize_options {
  size_t struct_size;
  int32_t pure;    /* non-zero: every matrix in TYPE's own format, no mix (like llama-quantize --pure) */
  int32_t threads; /* threads over rows; 0 (default): one per hardware thread. The output bytes do
                      not depend on it. */
  halyard_message_callback on_message; /* the plan, warnings and per-format summary; NULL: silent */
  void* user_data;                     /* passed to on_message */
} halyard_quantize_options;

HALYARD_API void halyard_quantize_options_init(halyard_quantize_options* options, size_t size);
#define halyard_quantize_options_default(options) halyard_quantize_options_init((options), sizeof(*(options)))
/* Reads the GGUF model at input_path and writes it quantized as `type` to output_path (through
 * output_path.tmp, renamed when complete: on any failure no output file is left). Types: F32,
 * F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q3_K_S, Q3_K_M, Q3_K_L, Q4_K, Q4_K_S,
 * Q4_K_M, Q5_K, Q5_K_S, Q5_K_M, Q6_K (case-insensitive; see README "halyard quantize" for the
 * mix rules and fallbacks). The same input and type give the same bytes. Errors:
 * HALYARD_ERROR_INVALID_ARGUMENT (unknown type, NULL path), HALYARD_ERROR_NOT_FOUND (no input),
 * HALYARD_ERROR_CORRUPT_FILE (input is not valid GGUF), HALYARD_ERROR_UNIMPLEMENTED (a tensor
 * type Halyard cannot read), HALYARD_ERROR_UNAVAILABLE (the output cannot be created or
 * written, a full disk included), HALYARD_ERROR_OUT_OF_MEMORY (host memory).
 * Any thread; calls for different files may run at once. */
HALYARD_API halyard_status halyard_quantize(const char* input_path, const char* output_path, const char* type,
                                            const halyard_quantize_options* options);

#ifdef __cplusplus
}
#endif

#endif /* HALYARD_H_ */
