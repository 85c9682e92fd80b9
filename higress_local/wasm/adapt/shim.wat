;; hlocal's host-function shim: functions merged into a COPY of a Higress-built module so that stock
;; Envoy runs it. Assembled into shim.wasm (`python -m higress_local.adapt.build`); merged by
;; higress_local/adapt/merge.py, which maps:
;;   import "env" X        -> the module's own import of host function X (stock Envoy provides it)
;;   import "hlocal" X     -> the module's exported function X (the SDK's original callback)
;;   import "env" "memory" -> the module's memory
;;   export "redirect:X"   -> every call to the module's import X now calls this function instead
;;   export "export:X"     -> the module's export X now names this function
;; The merge copies only the functions a module needs (and what they call).
;;
;; Memory: Go's wasip1 linker reserves [4096, 12288) for wasm_exec.js (cmd/link/internal/ld/data.go
;; wasmMinDataAddr); GOOS=wasip1 never uses it, so the shim keeps its state there (the merge checks
;; that no data segment touches it):
;;   4096 u32  get_log_level answer (a data segment the merge writes: the stack's wasm log level)
;;   4100 u32  token of the last http call
;;   4104 u32  header value pointer, 4108 u32 header value size (proxy_get_header_map_value out)
;;   4112      "get_log_level"          4128 ":status"
;;   4160      header pairs of the relay's init call    4416  header pairs of the relay's command call
;;   4512      inject_encoded_data emulation (96 bytes)
;;   4608      buffer-limit emulation: names and small state (512 bytes)
;;   5120      body of the init call (2048 bytes)
;;   7168      buffer-limit emulation: reserved (1024 bytes; unused, Envoy reports the buffered total)
;;   8192      256 outstanding relay calls: u32 token, u32 kind (0 free, 1 command, 2 init)
;;   10240     upstream-hosts emulation (2048 bytes)
;; Each emulation keeps to its own range: a change of this map changes every emulation's tests.
;;
;; Semantics follow Higress: higress-group/proxy-wasm-cpp-host src/exports.cc (redis_init,
;; redis_call), higress-group/envoy source/common/redis/async_client_impl.h (op timeout, auth,
;; params after '?'), higress-group/proxy-wasm-go-sdk proxywasm/internal/abi_enums.go (buffer type 9 =
;; Redis call response; status codes) and abi_callback_l7.go (proxy_on_redis_call_response).
(module
  (import "env" "proxy_http_call"
    (func $http_call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_value"
    (func $get_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes"
    (func $get_buffer_bytes (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_call_foreign_function"
    (func $call_foreign (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "hlocal" "proxy_on_http_call_response"
    (func $sdk_http_response (param i32 i32 i32 i32 i32)))
  (import "hlocal" "proxy_on_redis_call_response"
    (func $sdk_redis_response (param i32 i32 i32 i32)))
  ;; inject_encoded_data emulation
  (import "env" "proxy_set_buffer_bytes"
    (func $set_buffer_bytes (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_continue_stream" (func $continue_stream (param i32) (result i32)))
  (import "env" "proxy_set_effective_context" (func $set_effective_context (param i32) (result i32)))
  (import "hlocal" "proxy_on_response_body"
    (func $sdk_response_body (param i32 i32 i32) (result i32)))
  ;; upstream-hosts emulation
  (import "env" "proxy_get_property" (func $get_property (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_replace_header_map_value"
    (func $replace_header (param i32 i32 i32 i32 i32) (result i32)))
  ;; decoder buffer-limit emulation
  (import "env" "proxy_send_local_response"
    (func $send_local_response (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "hlocal" "proxy_on_request_body" (func $sdk_request_body (param i32 i32 i32) (result i32)))
  (import "env" "memory" (memory 1))

  ;; Timeout of command calls: the last proxy_redis_init's (Higress's default op timeout is 1 s).
  (global $timeout (mut i32) (i32.const 1000))

  (data (i32.const 4112) "get_log_level")
  (data (i32.const 4128) ":status")
  ;; proxy-wasm header pairs: count, (key size, value size)*, then each key and value NUL-terminated.
  (data (i32.const 4160)
    "\03\00\00\00" "\07\00\00\00\04\00\00\00" "\05\00\00\00\12\00\00\00" "\0a\00\00\00\12\00\00\00"
    ":method\00POST\00" ":path\00/hlocal-redis/init\00" ":authority\00hlocal-redis-relay\00")
  (data (i32.const 4416)
    "\03\00\00\00" "\07\00\00\00\04\00\00\00" "\05\00\00\00\12\00\00\00" "\0a\00\00\00\12\00\00\00"
    ":method\00POST\00" ":path\00/hlocal-redis/call\00" ":authority\00hlocal-redis-relay\00")

  (func $copy (param $dst i32) (param $src i32) (param $n i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        (i32.store8 (local.get $dst) (i32.load8_u (local.get $src)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 1)))
        (local.set $src (i32.add (local.get $src) (i32.const 1)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next))))

  (func $equal (param $a i32) (param $b i32) (param $n i32) (result i32)
    (block $differ
      (loop $next
        (if (i32.eqz (local.get $n)) (then (return (i32.const 1))))
        (br_if $differ (i32.ne (i32.load8_u (local.get $a)) (i32.load8_u (local.get $b))))
        (local.set $a (i32.add (local.get $a) (i32.const 1)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (i32.const 0))

  ;; Length of the cluster name before '?' (wasm-go appends Redis options as a query to Init's name).
  (func $base_length (param $ptr i32) (param $len i32) (result i32)
    (local $i i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (br_if $done (i32.eq (i32.load8_u (i32.add (local.get $ptr) (local.get $i))) (i32.const 63)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $i))

  ;; The table slot holding `token` (kind != 0), else 0.
  (func $find (param $token i32) (result i32)
    (local $slot i32)
    (local.set $slot (i32.const 8192))
    (block $none
      (loop $next
        (br_if $none (i32.ge_u (local.get $slot) (i32.const 10240)))
        (if (i32.and (i32.ne (i32.load offset=4 (local.get $slot)) (i32.const 0))
                     (i32.eq (i32.load (local.get $slot)) (local.get $token)))
          (then (return (local.get $slot))))
        (local.set $slot (i32.add (local.get $slot) (i32.const 8)))
        (br $next)))
    (i32.const 0))

  ;; A free table slot, else 0.
  (func $free_slot (result i32)
    (local $slot i32)
    (local.set $slot (i32.const 8192))
    (block $none
      (loop $next
        (br_if $none (i32.ge_u (local.get $slot) (i32.const 10240)))
        (if (i32.eqz (i32.load offset=4 (local.get $slot))) (then (return (local.get $slot))))
        (local.set $slot (i32.add (local.get $slot) (i32.const 8)))
        (br $next)))
    (i32.const 0))

  ;; proxy_redis_init: check the cluster exists (BadArgument otherwise, as on Higress) by sending the
  ;; relay username, password, timeout and options; the relay authenticates with them from then on.
  (func $redis_init (export "redirect:proxy_redis_init")
    (param $cluster i32) (param $cluster_len i32) (param $user i32) (param $user_len i32)
    (param $password i32) (param $password_len i32) (param $timeout i32) (result i32)
    (local $slot i32) (local $body_len i32) (local $at i32) (local $status i32)
    (local.set $body_len (i32.add (i32.const 12)
      (i32.add (local.get $cluster_len) (i32.add (local.get $user_len) (local.get $password_len)))))
    ;; Credentials and options beyond 2 KB do not fit the init body: BadArgument.
    (if (i32.gt_u (local.get $body_len) (i32.const 2048)) (then (return (i32.const 2))))
    (local.set $slot (call $free_slot))
    (if (i32.eqz (local.get $slot)) (then (return (i32.const 10))))
    (i32.store (i32.const 5120) (local.get $user_len))
    (i32.store (i32.const 5124) (local.get $password_len))
    (i32.store (i32.const 5128) (local.get $timeout))
    (local.set $at (i32.const 5132))
    (call $copy (local.get $at) (local.get $user) (local.get $user_len))
    (local.set $at (i32.add (local.get $at) (local.get $user_len)))
    (call $copy (local.get $at) (local.get $password) (local.get $password_len))
    (local.set $at (i32.add (local.get $at) (local.get $password_len)))
    (call $copy (local.get $at) (local.get $cluster) (local.get $cluster_len))
    (local.set $status (call $http_call
      (local.get $cluster) (call $base_length (local.get $cluster) (local.get $cluster_len))
      (i32.const 4160) (i32.const 96) (i32.const 5120) (local.get $body_len) (i32.const 0) (i32.const 0)
      (select (local.get $timeout) (i32.const 1000) (local.get $timeout)) (i32.const 4100)))
    (if (local.get $status) (then (return (local.get $status))))
    (i32.store (local.get $slot) (i32.load (i32.const 4100)))
    (i32.store offset=4 (local.get $slot) (i32.const 2))
    (if (local.get $timeout) (then (global.set $timeout (local.get $timeout))))
    (i32.const 0))

  ;; proxy_redis_call: the RESP command is the body of an HTTP call to the relay on the same cluster.
  (func $redis_call (export "redirect:proxy_redis_call")
    (param $cluster i32) (param $cluster_len i32) (param $query i32) (param $query_len i32)
    (param $token_ptr i32) (result i32)
    (local $slot i32) (local $status i32)
    (local.set $slot (call $free_slot))
    (if (i32.eqz (local.get $slot)) (then (return (i32.const 10))))
    (local.set $status (call $http_call
      (local.get $cluster) (call $base_length (local.get $cluster) (local.get $cluster_len))
      (i32.const 4416) (i32.const 96) (local.get $query) (local.get $query_len) (i32.const 0) (i32.const 0)
      (global.get $timeout) (local.get $token_ptr)))
    (if (local.get $status) (then (return (local.get $status))))
    (i32.store (local.get $slot) (i32.load (local.get $token_ptr)))
    (i32.store offset=4 (local.get $slot) (i32.const 1))
    (i32.const 0))

  ;; True when the relay answered 200: anything else (no answer, Envoy's own 503, a relay error)
  ;; is a failed Redis call, as a broken connection is on Higress.
  (func $relay_ok (param $headers i32) (result i32)
    (local $value i32)
    (if (i32.eqz (local.get $headers)) (then (return (i32.const 0))))
    (if (call $get_header (i32.const 6) (i32.const 4128) (i32.const 7) (i32.const 4104) (i32.const 4108))
      (then (return (i32.const 0))))
    (if (i32.ne (i32.load (i32.const 4108)) (i32.const 3)) (then (return (i32.const 0))))
    (local.set $value (i32.load (i32.const 4104)))
    (i32.and
      (i32.and (i32.eq (i32.load8_u (local.get $value)) (i32.const 50))
               (i32.eq (i32.load8_u offset=1 (local.get $value)) (i32.const 48)))
      (i32.eq (i32.load8_u offset=2 (local.get $value)) (i32.const 48))))

  ;; proxy_on_http_call_response: relay answers go to the SDK's Redis callback, the rest as before.
  (func $on_http_call_response (export "export:proxy_on_http_call_response")
    (param $context i32) (param $token i32) (param $headers i32) (param $body_size i32) (param $trailers i32)
    (local $slot i32) (local $kind i32)
    (local.set $slot (call $find (local.get $token)))
    (if (i32.eqz (local.get $slot))
      (then
        (call $sdk_http_response (local.get $context) (local.get $token) (local.get $headers)
          (local.get $body_size) (local.get $trailers))
        (return)))
    (local.set $kind (i32.load offset=4 (local.get $slot)))
    (i32.store offset=4 (local.get $slot) (i32.const 0))
    ;; The init call only checked the cluster and handed the relay its credentials.
    (if (i32.eq (local.get $kind) (i32.const 2)) (then (return)))
    (if (call $relay_ok (local.get $headers))
      (then (call $sdk_redis_response (local.get $context) (local.get $token) (i32.const 0) (local.get $body_size)))
      (else (call $sdk_redis_response (local.get $context) (local.get $token) (i32.const 1) (i32.const 0)))))

  ;; proxy_get_buffer_bytes: buffer type 9 (Redis call response) is the relay call's body (type 4).
  (func $get_buffer_bytes_w (export "redirect:proxy_get_buffer_bytes")
    (param $type i32) (param $start i32) (param $length i32) (param $ptr_ptr i32) (param $size_ptr i32)
    (result i32)
    (call $get_buffer_bytes
      (select (i32.const 4) (local.get $type) (i32.eq (local.get $type) (i32.const 9)))
      (local.get $start) (local.get $length) (local.get $ptr_ptr) (local.get $size_ptr)))

  ;; proxy_call_foreign_function: answer Higress's get_log_level (u32, little-endian) from the level
  ;; hlocal wrote at 4096; every other name goes to Envoy as before.
  (func $call_foreign_w (export "redirect:proxy_call_foreign_function")
    (param $name i32) (param $name_len i32) (param $args i32) (param $args_len i32)
    (param $result_ptr i32) (param $result_size_ptr i32) (result i32)
    (if (i32.eq (local.get $name_len) (i32.const 13))
      (then
        (if (call $equal (local.get $name) (i32.const 4112) (i32.const 13))
          (then
            (if (local.get $result_ptr) (then (i32.store (local.get $result_ptr) (i32.const 4096))))
            (if (local.get $result_size_ptr) (then (i32.store (local.get $result_size_ptr) (i32.const 4))))
            (return (i32.const 0))))))
    (call $call_foreign (local.get $name) (local.get $name_len) (local.get $args) (local.get $args_len)
      (local.get $result_ptr) (local.get $result_size_ptr)))

  ;; ---- upstream hosts: scratch [10240, 12288) ----
  ;; Higress's Envoy answers proxy_get_upstream_hosts with the route cluster's hosts (a proxy-wasm
  ;; pair list: address, JSON with health_status and metrics) and pins the host a plugin names with
  ;; proxy_set_upstream_override_host (higress-group/proxy-wasm-go-sdk proxywasm/hostcall.go
  ;; GetUpstreamHosts, SetUpstreamOverrideHost). Stock Envoy has neither, so:
  ;;   10240 u32 value pointer, 10244 u32 value size (proxy_get_property out)
  ;;   10248 "cluster_name"   10260 "x-hlocal-upstream-host" (render/endpoints.py reads that header)
  ;;   10288 a table hlocal writes when it adapts the module (adapt/upstream.py): u32 count, then per
  ;;         cluster u32 name pointer, name size, pair-list pointer, pair-list size; then the bytes.
  (data (i32.const 10248) "cluster_name")
  (data (i32.const 10260) "x-hlocal-upstream-host")

  ;; proxy_get_upstream_hosts: the table's pair list of the request's cluster (property cluster_name,
  ;; which hlocal's bridge filter keeps); NotFound (1) for a cluster hlocal has no hosts of. The SDK
  ;; reads the list in place, as it reads get_log_level's answer.
  (func $get_upstream_hosts (export "redirect:proxy_get_upstream_hosts")
    (param $ptr_ptr i32) (param $size_ptr i32) (result i32)
    (local $name i32) (local $len i32) (local $entry i32) (local $end i32)
    (if (call $get_property (i32.const 10248) (i32.const 12) (i32.const 10240) (i32.const 10244))
      (then (return (i32.const 1))))
    (local.set $name (i32.load (i32.const 10240)))
    (local.set $len (i32.load (i32.const 10244)))
    (local.set $entry (i32.const 10292))
    (local.set $end (i32.add (i32.const 10292) (i32.shl (i32.load (i32.const 10288)) (i32.const 4))))
    (block $none
      (loop $next
        (br_if $none (i32.ge_u (local.get $entry) (local.get $end)))
        (if (i32.eq (i32.load offset=4 (local.get $entry)) (local.get $len))
          (then
            (if (call $equal (i32.load (local.get $entry)) (local.get $name) (local.get $len))
              (then
                (i32.store (local.get $ptr_ptr) (i32.load offset=8 (local.get $entry)))
                (i32.store (local.get $size_ptr) (i32.load offset=12 (local.get $entry)))
                (return (i32.const 0))))))
        (local.set $entry (i32.add (local.get $entry) (i32.const 16)))
        (br $next)))
    (i32.const 1))

  ;; proxy_set_upstream_override_host: the address goes into the request header the cluster's
  ;; override-host policy reads (stock Envoy picks the host when the router forwards).
  (func $set_upstream_override_host (export "redirect:proxy_set_upstream_override_host")
    (param $address i32) (param $address_len i32) (result i32)
    (call $replace_header (i32.const 0) (i32.const 10260) (i32.const 22)
      (local.get $address) (local.get $address_len)))
  ;; ---- end upstream hosts ----

  ;; ---- inject_encoded_data: proxy_inject_encoded_data_to_filter_chain on stock Envoy ----
  ;; Higress's Envoy (higress-group/envoy source/extensions/common/wasm/context.cc) hands the bytes to
  ;; Envoy's encoder_callbacks_->injectEncodedDataToFilterChain: they go to the filters after the
  ;; plugin and on to the client, from a body callback or from an HTTP-call callback while the
  ;; plugin holds the response (wasm-go returns StopIterationNoBuffer while a streaming response is
  ;; paused). Stock Envoy can only edit the response body it holds for the filter, so the copy:
  ;; - inside the plugin's proxy_on_response_body: the first injection replaces the chunk, later ones
  ;;   append, and the chunk goes on (Continue);
  ;; - a chunk the plugin keeps (StopIterationNoBuffer) is emptied and held in Envoy's buffer
  ;;   (StopIterationAndBuffer), so that a later injection from a callback appends to that buffer and
  ;;   resumes the stream (proxy_continue_stream); once the upstream has ended, injections without
  ;;   end_stream stay held until the one with end_stream;
  ;; - after an injection with end_stream, later upstream data is dropped.
  ;; Streams are tracked at [4512, 4608): 12 entries of (context id, flags: 1 held, 2 ended by the
  ;; plugin, 4 upstream ended); a full table reuses the oldest entry.
  (global $effective (mut i32) (i32.const 0))   ;; the context host calls act on
  (global $in_body (mut i32) (i32.const 0))     ;; 1 while the plugin's proxy_on_response_body runs
  (global $injected (mut i32) (i32.const 0))    ;; bytes were injected during that call
  (global $inject_cursor (mut i32) (i32.const 4512))

  (func $inject_entry (param $context i32) (result i32)
    (local $at i32)
    (local.set $at (i32.const 4512))
    (block $none
      (loop $next
        (br_if $none (i32.ge_u (local.get $at) (i32.const 4608)))
        (if (i32.and (i32.eq (i32.load (local.get $at)) (local.get $context))
                     (i32.ne (i32.load offset=4 (local.get $at)) (i32.const 0)))
          (then (return (local.get $at))))
        (local.set $at (i32.add (local.get $at) (i32.const 8)))
        (br $next)))
    (i32.const 0))

  (func $inject_flags (param $context i32) (result i32)
    (local $at i32)
    (local.set $at (call $inject_entry (local.get $context)))
    (if (result i32) (local.get $at)
      (then (i32.load offset=4 (local.get $at)))
      (else (i32.const 0))))

  ;; Set a stream's flags; 0 frees its entry.
  (func $inject_set (param $context i32) (param $flags i32)
    (local $at i32)
    (local.set $at (call $inject_entry (local.get $context)))
    (if (i32.eqz (local.get $at))
      (then
        (if (i32.eqz (local.get $flags)) (then (return)))
        (local.set $at (call $inject_entry (i32.const 0)))
        (if (i32.eqz (local.get $at))
          (then
            (local.set $at (i32.const 4512))
            (block $found
              (loop $next
                (br_if $found (i32.ge_u (local.get $at) (i32.const 4608)))
                (br_if $found (i32.eqz (i32.load offset=4 (local.get $at))))
                (local.set $at (i32.add (local.get $at) (i32.const 8)))
                (br $next)))
            (if (i32.ge_u (local.get $at) (i32.const 4608))
              (then
                (local.set $at (global.get $inject_cursor))
                (global.set $inject_cursor
                  (select (i32.const 4512) (i32.add (local.get $at) (i32.const 8))
                          (i32.ge_u (i32.add (local.get $at) (i32.const 8)) (i32.const 4608))))))))))
    (i32.store (local.get $at) (local.get $context))
    (i32.store offset=4 (local.get $at) (local.get $flags)))

  (func $set_effective_context_w (export "redirect:proxy_set_effective_context")
    (param $context i32) (result i32)
    (global.set $effective (local.get $context))
    (call $set_effective_context (local.get $context)))

  ;; Replace the response body Envoy holds for the plugin with nothing.
  (func $empty_response_body
    (drop (call $set_buffer_bytes (i32.const 1) (i32.const 0) (i32.const 0x7fffffff) (i32.const 0) (i32.const 0))))

  (func $on_response_body (export "export:proxy_on_response_body")
    (param $context i32) (param $size i32) (param $end i32) (result i32)
    (local $action i32) (local $flags i32)
    (local.set $flags (call $inject_flags (local.get $context)))
    (if (local.get $end) (then (local.set $flags (i32.or (local.get $flags) (i32.const 4)))))
    ;; The plugin ended the response with injected data: what the upstream still sends is dropped.
    (if (i32.and (local.get $flags) (i32.const 2))
      (then
        (call $empty_response_body)
        (call $inject_set (local.get $context) (select (i32.const 0) (local.get $flags) (local.get $end)))
        (return (i32.const 0))))
    (global.set $effective (local.get $context))
    (global.set $in_body (i32.const 1))
    (global.set $injected (i32.const 0))
    (local.set $action (call $sdk_response_body (local.get $context) (local.get $size) (local.get $end)))
    (global.set $in_body (i32.const 0))
    (local.set $flags (call $inject_flags (local.get $context)))
    (if (local.get $end) (then (local.set $flags (i32.or (local.get $flags) (i32.const 4)))))
    (if (global.get $injected)
      (then
        (call $inject_set (local.get $context)
          (select (i32.const 0) (i32.and (local.get $flags) (i32.const 6)) (local.get $end)))
        (return (i32.const 0))))
    (if (i32.ge_u (local.get $action) (i32.const 3))
      (then
        (call $empty_response_body)
        (call $inject_set (local.get $context) (i32.or (local.get $flags) (i32.const 1)))
        (return (i32.const 1))))
    (if (local.get $end) (then (call $inject_set (local.get $context) (i32.const 0))))
    (local.get $action))

  (func $inject (export "redirect:proxy_inject_encoded_data_to_filter_chain")
    (param $data i32) (param $size i32) (param $end_stream i32) (result i32)
    (local $context i32) (local $flags i32) (local $status i32)
    (local.set $context (global.get $effective))
    (local.set $flags (call $inject_flags (local.get $context)))
    (if (global.get $in_body)
      (then
        (local.set $status (call $set_buffer_bytes (i32.const 1)
          (select (i32.const 0x7fffffff) (i32.const 0) (global.get $injected))
          (select (i32.const 0) (i32.const 0x7fffffff) (global.get $injected))
          (local.get $data) (local.get $size)))
        (if (local.get $status) (then (return (local.get $status))))
        (global.set $injected (i32.const 1))
        (if (local.get $end_stream)
          (then (call $inject_set (local.get $context) (i32.or (local.get $flags) (i32.const 2)))))
        (return (i32.const 0))))
    ;; From a callback: only into a response the plugin holds (BadArgument otherwise, as Higress
    ;; answers outside a stream).
    (if (i32.eqz (i32.and (local.get $flags) (i32.const 1))) (then (return (i32.const 2))))
    (local.set $status (call $set_buffer_bytes (i32.const 1) (i32.const 0x7fffffff) (i32.const 0)
      (local.get $data) (local.get $size)))
    (if (local.get $status) (then (return (local.get $status))))
    (if (local.get $end_stream) (then (local.set $flags (i32.or (local.get $flags) (i32.const 2)))))
    ;; The upstream has ended and the plugin has more to say: keep holding until its last injection.
    (if (i32.and (i32.ne (i32.and (local.get $flags) (i32.const 4)) (i32.const 0)) (i32.eqz (local.get $end_stream)))
      (then (return (i32.const 0))))
    (call $inject_set (local.get $context)
      (select (i32.const 0) (i32.and (local.get $flags) (i32.const 2)) (i32.and (local.get $flags) (i32.const 4))))
    (drop (call $continue_stream (i32.const 1)))
    (i32.const 0))
  ;; ---- end inject_encoded_data ----

  ;; ---- decoder buffer limit: scratch [4608, 5120) ----
  ;; Higress's gateway buffers at most the listener's connection buffer limit (32 KiB by default) of
  ;; a request body a plugin holds: Envoy answers 413 "Payload Too Large" (details
  ;; request_payload_too_large) once a filter's StopIterationAndBuffer leaves more than that buffered
  ;; (envoyproxy/envoy source/common/http/filter_manager.cc, requestDataTooLarge). A plugin raises the
  ;; stream's limit by setting property set_decoder_buffer_limit (wasm-go SetRequestBodyBufferLimit),
  ;; which only Higress's Envoy applies (higress-group/envoy source/extensions/common/wasm/context.cc,
  ;; HIGRESS). Stock Envoy cannot raise a limit from Wasm, so hlocal's listener starts high and the
  ;; copy enforces the request's limit itself: when the plugin buffers and the body Envoy reports
  ;; (the whole buffered body: measured on Envoy 1.40) exceeds the stream's limit (the last
  ;; set_decoder_buffer_limit, a filter-state property any plugin of the chain may have set, else
  ;; hlocal's default), it answers what Envoy answers (measured with a 32 KiB listener).
  ;;   4608 u32 default limit (gateway.downstream.connection_buffer_limits; a data segment the merge writes)
  ;;   4612 u32 property value pointer, 4616 u32 size (proxy_get_property out)
  ;;   4620 "set_decoder_buffer_limit"   4644 "Payload Too Large"   4664 "request_payload_too_large"
  ;;   4692 an empty header map (u32 count 0)
  ;;   4700 "set_encoder_buffer_limit"   4724 "Internal Server Error"   4748 "response_payload_too_large"
  ;; Responses likewise: Envoy keeps one limit per stream (FilterManager::setBufferLimit, both
  ;; setDecoderBufferLimit and setEncoderBufferLimit), and a response over it is Envoy's 500
  ;; "Internal Server Error" (response_payload_too_large), or a reset once its headers went out
  ;; (sendLocalReply does that itself).
  (data (i32.const 4608) "\00\80\00\00")
  (data (i32.const 4620) "set_decoder_buffer_limit")
  (data (i32.const 4644) "Payload Too Large")
  (data (i32.const 4664) "request_payload_too_large")
  (data (i32.const 4700) "set_encoder_buffer_limit")
  (data (i32.const 4724) "Internal Server Error")
  (data (i32.const 4748) "response_payload_too_large")

  ;; A limit property of the stream (decimal digits, the last value any plugin of the chain set, as
  ;; Envoy keeps the last setDecoderBufferLimit), or -1 when unset or not a number (Higress's Envoy
  ;; ignores that). 0 sets no limit: Envoy's watermark buffers ignore a zero high watermark
  ;; (envoyproxy/envoy source/common/buffer/watermark_buffer.cc).
  (func $limit_property (param $name i32) (result i64)
    (local $at i32) (local $end i32) (local $digit i32) (local $value i64)
    (if (call $get_property (local.get $name) (i32.const 24) (i32.const 4612) (i32.const 4616))
      (then (return (i64.const -1))))
    (local.set $at (i32.load (i32.const 4612)))
    (local.set $end (i32.add (local.get $at) (i32.load (i32.const 4616))))
    (if (i32.ge_u (local.get $at) (local.get $end)) (then (return (i64.const -1))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $at) (local.get $end)))
        (local.set $digit (i32.sub (i32.load8_u (local.get $at)) (i32.const 48)))
        (if (i32.gt_u (local.get $digit) (i32.const 9)) (then (return (i64.const -1))))
        (local.set $value (i64.add (i64.mul (local.get $value) (i64.const 10)) (i64.extend_i32_u (local.get $digit))))
        (if (i64.gt_u (local.get $value) (i64.const 0xffffffff)) (then (return (i64.const 0xffffffff))))
        (local.set $at (i32.add (local.get $at) (i32.const 1)))
        (br $next)))
    (if (i64.eqz (local.get $value)) (then (return (i64.const 0xffffffff))))
    (local.get $value))

  ;; The request's limit: set_decoder_buffer_limit, else the default.
  (func $request_limit (result i32)
    (local $limit i64)
    (local.set $limit (call $limit_property (i32.const 4620)))
    (if (i64.lt_s (local.get $limit) (i64.const 0)) (then (return (i32.load (i32.const 4608)))))
    (i32.wrap_i64 (local.get $limit)))

  ;; The response's limit: set_encoder_buffer_limit (set later than the request's), else the request's.
  (func $response_limit (result i32)
    (local $limit i64)
    (local.set $limit (call $limit_property (i32.const 4700)))
    (if (i64.lt_s (local.get $limit) (i64.const 0)) (then (return (call $request_limit))))
    (i32.wrap_i64 (local.get $limit)))

  ;; proxy_on_request_body: the plugin's callback, then Envoy's 413 if what it buffers is too much.
  (func $on_request_body (export "export:proxy_on_request_body")
    (param $context i32) (param $size i32) (param $end i32) (result i32)
    (local $action i32)
    (local.set $action (call $sdk_request_body (local.get $context) (local.get $size) (local.get $end)))
    (if (i32.ne (local.get $action) (i32.const 1)) (then (return (local.get $action))))
    (if (i32.le_u (local.get $size) (call $request_limit)) (then (return (local.get $action))))
    (drop (call $send_local_response (i32.const 413) (i32.const 4664) (i32.const 25) (i32.const 4644)
      (i32.const 17) (i32.const 4692) (i32.const 4) (i32.const -1)))
    (i32.const 3))

  ;; proxy_on_response_body (merged as the module's export when no other emulation takes it): the
  ;; plugin's callback, then Envoy's 500 (or reset) if what it buffers is too much.
  (func $on_response_body_limited (export "limit:proxy_on_response_body")
    (param $context i32) (param $size i32) (param $end i32) (result i32)
    (local $action i32)
    (local.set $action (call $sdk_response_body (local.get $context) (local.get $size) (local.get $end)))
    (if (i32.ne (local.get $action) (i32.const 1)) (then (return (local.get $action))))
    (if (i32.le_u (local.get $size) (call $response_limit)) (then (return (local.get $action))))
    (drop (call $send_local_response (i32.const 500) (i32.const 4748) (i32.const 26) (i32.const 4724)
      (i32.const 21) (i32.const 4692) (i32.const 4) (i32.const -1)))
    (i32.const 3))
  ;; ---- end decoder buffer limit ----
)
