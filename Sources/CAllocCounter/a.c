int alloc_placeholder;
