module gorcbench

go 1.19
