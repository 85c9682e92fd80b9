;; hlocal property bridge: a Proxy-Wasm (ABI 0.2.1) HTTP filter placed, on stock
;; Envoy, before the first plugin and after every plugin (each time behind a
;; route-refresh filter, see render/envoy.py).
;;
;; 1. route_name / cluster_name. Higress's Envoy answers the top-level
;;    properties `route_name` and `cluster_name` from the route chosen *now*
;;    (higress-group/envoy source/extensions/common/wasm/context.cc, findValue,
;;    HIGRESS block). Stock Envoy (>= 1.33) only has `xds.route_name` /
;;    `xds.cluster_name`; wasm-go reads the top-level names for `_match_route_`,
;;    `_match_route_prefix_` and `_match_service_` rules and for RouteCluster.
;;    For an unknown top-level name Envoy falls back to filter state
;;    `wasm.<name>`, which proxy_set_property writes. So every instance copies
;;      xds.route_name   -> route_name
;;      xds.cluster_name -> cluster_name
;;    and, running after each plugin, keeps them current after a re-route.
;;
;; 2. clear_route_cache=off. wasm-go's DisableReroute() sets the property
;;    `clear_route_cache` to `off`; Higress's wasm context then skips
;;    clearRouteCache() for that plugin's header changes, so the route chosen
;;    before the plugin stays (same file, setProperty; context.h,
;;    Context::clearRouteCache and onHeadersModified; HIGRESS blocks). Stock
;;    Envoy clears the route cache on every request-header change of an ABI
;;    0.2.1 module (which hlocal serves 0.2.100 ones as) and re-picks the route. When an instance sees
;;    `clear_route_cache` == "off" it consumes it (sets it to "", so the next
;;    instance only sees what the next plugin sets) and, if the route changed
;;    under the plugin, pins the route chosen before it: it writes that route's
;;    name (still in `route_name`, written by the previous instance) to filter
;;    state `wasm.hlocal_pin`, which the rendered route twins match on, and
;;    clears the route cache (stock Envoy's `clear_route_cache` foreign
;;    function) so the next route lookup picks the twin. route_name /
;;    cluster_name are left as they were: the pinned route's.
;;
;; 3. x_request_id. Higress's Envoy answers the property `x_request_id` (the
;;    request's x-request-id); wasm-go's logger puts it in every line it writes
;;    ("[plugin] [id] [x_request_id] message", higress-group/wasm-go
;;    pkg/wrapper/log_wrapper.go), which is how hlocal's inspector ties a log
;;    line to the request that caused it. Stock Envoy has the same value as
;;    `request.id`, so every instance copies
;;      request.id -> x_request_id
;;
;; A property the host does not have is left unset, so plugins see NotFound
;; exactly as before. Property paths are the segments joined with NUL bytes.
(module
  (import "env" "proxy_get_property"
    (func $get_property (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_property"
    (func $set_property (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_call_foreign_function"
    (func $call_foreign (param i32 i32 i32 i32 i32 i32) (result i32)))

  (memory (export "memory") 1)

  ;; Layout of the first page:
  ;;   0..15      unused (keeps address 0 out of use)
  ;;   16, 20     out-parameters of proxy_get_property: value address, value size
  ;;   24, 28     the same, for a second value held at the same time
  ;;   32, 36     out-parameters of proxy_call_foreign_function (result unused)
  ;;   64         "xds\00route_name"   (14 bytes; "route_name" is its tail at 68)
  ;;   96         "xds\00cluster_name" (16 bytes; "cluster_name" is its tail at 100)
  ;;   128        "clear_route_cache"  (17 bytes; the property and the foreign function)
  ;;   160        "hlocal_pin"         (10 bytes)
;;   192        "request\00id"       (10 bytes)
;;   208        "x_request_id"       (12 bytes)
  ;;   1024..     heap for proxy_on_memory_allocate
  (data (i32.const 64) "xds\00route_name")
  (data (i32.const 96) "xds\00cluster_name")
  (data (i32.const 128) "clear_route_cache")
  (data (i32.const 160) "hlocal_pin")
  (data (i32.const 192) "request\00id")
  (data (i32.const 208) "x_request_id")

  (global $heap_base i32 (i32.const 1024))
  (global $heap (mut i32) (i32.const 1024))

  (func (export "proxy_abi_version_0_2_1"))

  ;; Bump allocator. The host calls this only while a host call runs, to hand
  ;; back a value; nothing outlives one proxy_on_request_headers call, so that
  ;; callback resets the heap instead of freeing. Addresses are 8-byte aligned;
  ;; memory grows when needed, and 0 (failure) is returned if it cannot.
  (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
    (local $ptr i32)
    (local $end i32)
    (local $limit i32)
    (local.set $ptr (global.get $heap))
    (local.set $end
      (i32.and (i32.add (i32.add (local.get $ptr) (local.get $size)) (i32.const 7))
               (i32.const -8)))
    (if (i32.lt_u (local.get $end) (local.get $ptr))
      (then (return (i32.const 0))))
    (local.set $limit (i32.shl (memory.size) (i32.const 16)))
    (if (i32.gt_u (local.get $end) (local.get $limit))
      (then
        (if (i32.eq
              (memory.grow
                (i32.shr_u (i32.add (i32.sub (local.get $end) (local.get $limit))
                                    (i32.const 65535))
                           (i32.const 16)))
              (i32.const -1))
          (then (return (i32.const 0))))))
    (global.set $heap (local.get $end))
    (local.get $ptr))

  (func (export "proxy_on_context_create") (param $context_id i32) (param $root_context_id i32))

  (func (export "proxy_on_vm_start") (param $root_context_id i32) (param $vm_config_size i32)
    (result i32)
    (i32.const 1))

  (func (export "proxy_on_configure") (param $root_context_id i32) (param $config_size i32)
    (result i32)
    (i32.const 1))

  ;; Copies the property at path $from to path $to when the host has it.
  (func $copy (param $from i32) (param $from_len i32) (param $to i32) (param $to_len i32)
    (if (i32.eqz (call $get_property (local.get $from) (local.get $from_len)
                                     (i32.const 16) (i32.const 20)))
      (then
        (drop (call $set_property (local.get $to) (local.get $to_len)
                                  (i32.load (i32.const 16)) (i32.load (i32.const 20)))))))

  ;; 1 when a plugin set property clear_route_cache to exactly "off".
  (func $reroute_disabled (result i32)
    (local $value i32)
    (if (call $get_property (i32.const 128) (i32.const 17) (i32.const 16) (i32.const 20))
      (then (return (i32.const 0))))
    (if (i32.ne (i32.load (i32.const 20)) (i32.const 3))
      (then (return (i32.const 0))))
    (local.set $value (i32.load (i32.const 16)))
    (i32.and
      (i32.and (i32.eq (i32.load8_u (local.get $value)) (i32.const 0x6f))                        ;; o
               (i32.eq (i32.load8_u (i32.add (local.get $value) (i32.const 1))) (i32.const 0x66))) ;; f
      (i32.eq (i32.load8_u (i32.add (local.get $value) (i32.const 2))) (i32.const 0x66))))        ;; f

  ;; 1 when the two byte strings are equal.
  (func $equal (param $a i32) (param $a_len i32) (param $b i32) (param $b_len i32) (result i32)
    (local $i i32)
    (if (i32.ne (local.get $a_len) (local.get $b_len))
      (then (return (i32.const 0))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $a_len)))
        (if (i32.ne (i32.load8_u (i32.add (local.get $a) (local.get $i)))
                    (i32.load8_u (i32.add (local.get $b) (local.get $i))))
          (then (return (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 1))

  ;; After a plugin that disabled re-routing: consumes the flag and pins the
  ;; route named by route_name (the one chosen before the plugin) when the
  ;; request's route is now another one or none. 1 when it pinned.
  (func $keep_route (result i32)
    (drop (call $set_property (i32.const 128) (i32.const 17) (i32.const 0) (i32.const 0)))
    (if (call $get_property (i32.const 68) (i32.const 10) (i32.const 24) (i32.const 28))
      (then (return (i32.const 0)))) ;; no route before the plugin: nothing to keep
    (if (i32.eqz (call $get_property (i32.const 64) (i32.const 14) (i32.const 16) (i32.const 20)))
      (then
        (if (call $equal (i32.load (i32.const 24)) (i32.load (i32.const 28))
                         (i32.load (i32.const 16)) (i32.load (i32.const 20)))
          (then (return (i32.const 0)))))) ;; still the same route: nothing to undo
    (drop (call $set_property (i32.const 160) (i32.const 10)
                              (i32.load (i32.const 24)) (i32.load (i32.const 28))))
    (drop (call $call_foreign (i32.const 128) (i32.const 17) (i32.const 0) (i32.const 0)
                              (i32.const 32) (i32.const 36)))
    (i32.const 1))

  (func (export "proxy_on_request_headers")
    (param $context_id i32) (param $num_headers i32) (param $end_of_stream i32) (result i32)
    (global.set $heap (global.get $heap_base))
    (call $copy (i32.const 192) (i32.const 10) (i32.const 208) (i32.const 12))
    (if (call $reroute_disabled)
      (then (if (call $keep_route) (then (return (i32.const 0)))))) ;; Continue, names kept
    (call $copy (i32.const 64) (i32.const 14) (i32.const 68) (i32.const 10))
    (call $copy (i32.const 96) (i32.const 16) (i32.const 100) (i32.const 12))
    (i32.const 0)) ;; Continue
)
