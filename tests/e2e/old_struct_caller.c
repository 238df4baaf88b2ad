/* A caller compiled as C against older, smaller options structs, as a binary built before the
   fields were appended is: it declares its own copies of the old layouts, fills them through
   the exported symbols the way such a binary does (the frozen halyard_X_options_default
   functions and halyard_X_options_init with its own small size), and checks that guard bytes
   right after each struct stay untouched. Then it loads the model, creates a context and runs a
   step with those structs, and checks that the fields it does not know took their defaults
   (the context's KV dtype is the model's) and that the ones it set were read. Exit 0: passed. */
#include <halyard.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GUARD_BYTE 0xA5
#define GUARD_SIZE 64

/* halyard_context_options before kv_bytes and kv_dtype (the header of commit 230fb20). */
typedef struct old_context_options {
  size_t struct_size;
  int32_t max_sequences;
  int32_t kv_blocks;
  int32_t max_batch_tokens;
} old_context_options;

/* halyard_batch before output (the header of commit 3764be9). */
typedef struct old_batch {
  size_t struct_size;
  size_t n_tokens;
  const int32_t* tokens;
  const int32_t* positions;
  const int32_t* seq_ids;
  const int8_t* logits;
} old_batch;

/* halyard_model_options of 230fb20 (the last header with *_default functions) and, older, the
   one before kv_dtype. */
typedef struct old_model_options {
  size_t struct_size;
  const char* device;
  int32_t context_length;
  int32_t threads;
  const char* const* backend_options;
  int32_t kv_dtype;
} old_model_options;
typedef struct older_model_options {
  size_t struct_size;
  const char* device;
  int32_t context_length;
  int32_t threads;
  const char* const* backend_options;
} older_model_options;

/* halyard_generate_options before the sampling fields (logit bias, penalties, min_p). */
typedef struct older_generate_options {
  size_t struct_size;
  int32_t max_tokens;
  float temperature;
  int32_t top_k;
  float top_p;
  uint64_t seed;
  int parse_special;
} older_generate_options;

/* Each struct with guard bytes right after it (no padding between: every struct's size is a
   multiple of its alignment). */
#define GUARDED(type)                \
  struct {                           \
    type s;                          \
    unsigned char guard[GUARD_SIZE]; \
  }

static int failures = 0;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                              \
    }                                                                          \
  } while (0)

static void poison(void* p, size_t n) {
  memset(p, GUARD_BYTE, n);
}

static int guard_intact(const unsigned char* guard, const char* what) {
  for (size_t i = 0; i < GUARD_SIZE; ++i) {
    if (guard[i] != GUARD_BYTE) {
      fprintf(stderr, "%s wrote past the end of the caller's struct (guard byte %zu is 0x%02x)\n", what, i, guard[i]);
      return 0;
    }
  }
  return 1;
}

static const char* model_path(char* buf, size_t size) {
  const char* env = getenv("HALYARD_TEST_MODEL");
  if (env && *env)
    return env;
  const char* xdg = getenv("XDG_CACHE_HOME");
  const char* home = getenv("HOME");
  if (xdg && *xdg)
    snprintf(buf, size, "%s/halyard/models/SmolLM2-135M-Instruct.Q4_1.gguf", xdg);
  else
    snprintf(buf, size, "%s/.cache/halyard/models/SmolLM2-135M-Instruct.Q4_1.gguf", home ? home : ".");
  return buf;
}

static int collect(int32_t token, const char* text, size_t len, void* user_data) {
  (void)token;
  char* out = (char*)user_data;
  const size_t have = strlen(out);
  if (have + len < 256) {
    memcpy(out + have, text, len);
    out[have + len] = '\0';
  }
  return 0;
}

int main(void) {
  /* ---- Filling: the frozen symbols and _init with the old sizes write nothing past them. */
  GUARDED(old_context_options) ctx_opts;
  poison(&ctx_opts, sizeof ctx_opts);
  /* Parenthesised: the exported function an old binary calls, not the header's macro. */
  (halyard_context_options_default)((halyard_context_options*)&ctx_opts.s);
  CHECK(guard_intact(ctx_opts.guard, "halyard_context_options_default"));
  CHECK(ctx_opts.s.struct_size == sizeof(old_context_options));
  CHECK(ctx_opts.s.max_sequences == 1 && ctx_opts.s.kv_blocks == 0 && ctx_opts.s.max_batch_tokens == 512);
  poison(&ctx_opts, sizeof ctx_opts);
  halyard_context_options_init((halyard_context_options*)&ctx_opts.s, sizeof(old_context_options));
  CHECK(guard_intact(ctx_opts.guard, "halyard_context_options_init"));
  CHECK(ctx_opts.s.struct_size == sizeof(old_context_options));
  CHECK(ctx_opts.s.max_sequences == 1 && ctx_opts.s.kv_blocks == 0 && ctx_opts.s.max_batch_tokens == 512);

  GUARDED(old_model_options) model_opts;
  poison(&model_opts, sizeof model_opts);
  (halyard_model_options_default)((halyard_model_options*)&model_opts.s);
  CHECK(guard_intact(model_opts.guard, "halyard_model_options_default"));
  CHECK(model_opts.s.struct_size == sizeof(old_model_options));
  CHECK(model_opts.s.device == NULL && model_opts.s.context_length == 0 && model_opts.s.kv_dtype == HALYARD_KV_F16);
  GUARDED(older_model_options) older_model;
  poison(&older_model, sizeof older_model);
  halyard_model_options_init((halyard_model_options*)&older_model.s, sizeof(older_model_options));
  CHECK(guard_intact(older_model.guard, "halyard_model_options_init"));
  CHECK(older_model.s.struct_size == sizeof(older_model_options));

  GUARDED(older_generate_options) gen_opts;
  poison(&gen_opts, sizeof gen_opts);
  halyard_generate_options_init((halyard_generate_options*)&gen_opts.s, sizeof(older_generate_options));
  CHECK(guard_intact(gen_opts.guard, "halyard_generate_options_init"));
  CHECK(gen_opts.s.struct_size == sizeof(older_generate_options));
  CHECK(gen_opts.s.max_tokens == 128 && gen_opts.s.top_k == 40 && gen_opts.s.parse_special == 1);
  /* The generate options of 230fb20 are today's: the frozen symbol writes exactly them. */
  GUARDED(halyard_generate_options) gen_230fb20;
  poison(&gen_230fb20, sizeof gen_230fb20);
  (halyard_generate_options_default)(&gen_230fb20.s);
  CHECK(guard_intact(gen_230fb20.guard, "halyard_generate_options_default"));
  CHECK(gen_230fb20.s.struct_size == sizeof(halyard_generate_options));
  if (failures) {
    fprintf(stderr, "old_struct_caller: %d checks failed before the model was loaded\n", failures);
    return 1;
  }

  /* ---- Using them: the model with f32 caches (a field the 230fb20 caller knows); the context
     from the old context struct must then take the model's KV dtype for the field it does not
     have, and the kv_blocks it does have. */
  char buf[4096];
  const char* path = model_path(buf, sizeof buf);
  FILE* f = fopen(path, "rb");
  if (!f) {
    /* The model is part of the test fixture (tests/support/test_paths.h): absent is a failure. */
    fprintf(stderr, "model not found at %s: run scripts/fetch-model.sh or set HALYARD_TEST_MODEL\n", path);
    return 1;
  }
  fclose(f);
  model_opts.s.device = "ref";
  model_opts.s.context_length = 64;
  model_opts.s.kv_dtype = HALYARD_KV_F32;
  halyard_model* model = NULL;
  halyard_status s = halyard_model_load(path, (const halyard_model_options*)&model_opts.s, &model);
  if (s != HALYARD_OK) {
    fprintf(stderr, "loading %s failed: %s: %s\n", path, halyard_status_name(s), halyard_last_error());
    return 1;
  }
  CHECK(halyard_model_kv_bytes_per_token(model) == 2u * 30 * 64 * 3 * 4); /* f32, as asked */

  ctx_opts.s.max_sequences = 2;
  ctx_opts.s.kv_blocks = 3;
  ctx_opts.s.max_batch_tokens = 16;
  /* What lies past the old struct (here the guard) is not the library's to read. */
  halyard_context* ctx = NULL;
  s = halyard_context_create(model, (const halyard_context_options*)&ctx_opts.s, &ctx);
  if (s != HALYARD_OK) {
    fprintf(stderr, "halyard_context_create failed: %s: %s\n", halyard_status_name(s), halyard_last_error());
    halyard_model_free(model);
    return 1;
  }
  CHECK(halyard_context_kv_bytes_per_block(ctx) ==
        (uint64_t)halyard_context_block_size(ctx) * halyard_model_kv_bytes_per_token(model));
  CHECK(halyard_context_kv_blocks_total(ctx) == 3);
  CHECK(halyard_context_max_sequences(ctx) == 2);

  const char* prompt = "The capital of France is";
  int32_t ids[16];
  size_t n = 0;
  s = halyard_tokenize(model, prompt, strlen(prompt), 1, 1, ids, 16, &n);
  CHECK(s == HALYARD_OK && n == 5);
  int32_t positions[16], seqs[16];
  for (size_t i = 0; i < n; ++i) {
    positions[i] = (int32_t)i;
    seqs[i] = 1;
  }
  const old_batch batch = {sizeof(old_batch), n, ids, positions, seqs, NULL};
  s = halyard_context_step(ctx, (const halyard_batch*)&batch);
  CHECK(s == HALYARD_OK);
  if (s == HALYARD_OK) {
    const float* logits = halyard_context_logits(ctx, n - 1);
    CHECK(logits != NULL);
    if (logits) {
      int32_t best = 0;
      for (int32_t t = 1; t < halyard_model_vocab_size(model); ++t) {
        if (logits[t] > logits[best])
          best = t;
      }
      CHECK(best == 7042); /* " Paris" */
    }
    CHECK(halyard_seq_pos_max(ctx, 1) == 4);
  }
  halyard_context_free(ctx);

  /* The older generate struct: the sampling fields it lacks take their defaults (no bias, no
     penalties), so greedy decoding gives llama.cpp's tokens. */
  gen_opts.s.max_tokens = 3;
  gen_opts.s.temperature = 0.f;
  char text[256] = "";
  s = halyard_generate(model, prompt, (const halyard_generate_options*)&gen_opts.s, collect, text, NULL);
  CHECK(s == HALYARD_OK);
  CHECK(strcmp(text, " Paris.\n") == 0);
  if (strcmp(text, " Paris.\n") != 0)
    fprintf(stderr, "generated '%s'\n", text);
  halyard_model_free(model);

  if (failures) {
    fprintf(stderr, "old_struct_caller: %d checks failed\n", failures);
    return 1;
  }
  printf("old_struct_caller: every old-layout struct was filled and read within its size\n");
  return 0;
}
